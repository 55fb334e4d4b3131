"""One party (or dealer) process: join the mesh over mutual TLS and run the configured program.

    python -m tessera.runtime.party CONFIG.json      (what ``tessera party run`` calls)

Writes a JSON report (result, communication figures, wall time, or the error) to the
config's ``result_path`` and exits 0 on success, 1 on failure.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tessera.errors import ProtocolAbort, SessionError, TesseraError
from tessera.net.identity import Identity
from tessera.net.tls import Endpoint, connect_mesh
from tessera.runtime import jsonable
from tessera.runtime.config import PartyConfig
from tessera.runtime.inprocess import run_dealer, run_party

__all__ = ["run_config", "main", "load_program"]


def load_program(ref: str) -> Callable[..., Any]:
    """The function named ``tessera.module:function`` (only inside the tessera package)."""
    module, _, func = ref.partition(":")
    if not module.startswith("tessera.") or not func:
        raise SessionError(f"program {ref!r} must be 'module:function' inside the tessera package")
    try:
        return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        raise SessionError(f"no party program {ref!r}") from None


def run_config(cfg: PartyConfig) -> dict[str, Any]:
    """Connect, run the program (or serve as dealer), close; returns the report."""
    start = time.perf_counter()
    identity = Identity.load(cfg.identity_dir, cfg.name)
    endpoints = [Endpoint(e.name, e.host, e.port, e.fingerprint, e.certificate) for e in cfg.endpoints]
    program = None if cfg.is_dealer else load_program(cfg.program or "")
    channel = connect_mesh(
        cfg.index,
        endpoints,
        identity,
        bytes.fromhex(cfg.session_id),
        timeout=cfg.timeout,
        connect_timeout=cfg.connect_timeout,
        max_frame=cfg.max_frame,
    )
    done = threading.Event()
    if cfg.progress_path:
        threading.Thread(target=_report_progress, args=(channel, cfg.progress_path, start, done), daemon=True,
                         name="tessera-progress").start()
    try:
        if program is None:
            result: Any = {"served": run_dealer(channel, len(cfg.parties))}
        else:
            result = run_party(lambda s: program(s, **cfg.args), cfg.protocol, channel, cfg.parties, cfg.frac_bits)
    finally:
        done.set()
        channel.close()
    return {
        "ok": True,
        "party": cfg.name,
        "result": result,
        "comm": channel.stats.as_dict(),
        "seconds": time.perf_counter() - start,
    }


def _report_progress(channel: Any, path: str, start: float, done: threading.Event, every: float = 0.5) -> None:
    """Rewrite ``path`` with the session's figures so far (no values: counts of rounds and bytes)."""
    target = Path(path)
    tmp = target.with_suffix(".tmp")
    while not done.wait(every):
        stats = channel.stats.as_dict()
        tmp.write_text(json.dumps({"rounds": stats["rounds"], "bytes_sent": stats["bytes_sent"],
                                   "seconds": round(time.perf_counter() - start, 1)}))
        tmp.replace(target)


def _failure(cfg_name: str, e: BaseException) -> dict[str, Any]:
    report: dict[str, Any] = {"ok": False, "party": cfg_name, "error": type(e).__name__, "message": str(e)}
    if isinstance(e, ProtocolAbort):
        report["aborted_by"], report["reason"] = e.party, e.reason
    if not isinstance(e, TesseraError):
        report["trace"] = traceback.format_exc(limit=5)
    return report


def _die_with_parent() -> None:
    """When started by a node (``TESSERA_PARENT_PID``), exit as soon as the node is gone: a party
    whose node was killed must not go on computing; its peers then see the link close and abort."""
    parent = os.environ.get("TESSERA_PARENT_PID")
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(0.2)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="tessera-parent-watch").start()


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tessera.runtime.party CONFIG.json", file=sys.stderr)
        return 2
    cfg = PartyConfig.load(args[0])
    try:
        report = run_config(cfg)
        code = 0
    except BaseException as e:
        report = _failure(cfg.name, e)
        print(f"{cfg.name}: {report['error']}: {report['message']}", file=sys.stderr)
        code = 1
    if cfg.result_path:
        Path(cfg.result_path).write_text(jsonable.dumps(report))
    return code


if __name__ == "__main__":
    sys.exit(main())
