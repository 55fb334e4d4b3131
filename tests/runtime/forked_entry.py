"""An entry module for the fork server's tests: ``main([spec.json])`` does what the spec says."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    seen: dict[str, object] = {"pid": os.getpid(), "ppid": os.getppid(), "argv": sys.argv,
                               "env": os.environ.get(spec.get("env_var", ""), None), "cwd": os.getcwd(),
                               "name": Path("/proc/self/comm").read_text().strip(),
                               "launcher": os.environ.get("TESSERA_LAUNCHER_PID")}
    if spec.get("listen_fd") is not None:
        sock = socket.socket(fileno=spec["listen_fd"])
        seen["port"] = sock.getsockname()[1]
        sock.detach()
    Path(spec["out"]).write_text(json.dumps(seen))
    print("hello from the child", flush=True)
    print("and its stderr", file=sys.stderr, flush=True)
    time.sleep(spec.get("sleep", 0))
    return int(spec.get("exit", 0))
