"""The fork server: party processes forked warm, with the interface and guarantees of a subprocess
(exit codes, signals, output, environment, the listening socket) and none outliving its launcher."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tessera.runtime import forkserver
from tessera.runtime.launcher import listen, start

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "tests.runtime.forked_entry"


def _spec(tmp_path: Path, **spec: object) -> Path:
    path = tmp_path / f"spec-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps({"out": str(tmp_path / "seen.json"), **spec}))
    return path


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the child imports the entry module relative to its working directory


def test_child_gets_its_config_output_environment_and_listener(tmp_path: Path) -> None:
    listener = listen("127.0.0.1")
    port, fd = listener.getsockname()[1], listener.fileno()
    spec = _spec(tmp_path, listen_fd=fd, env_var="TESSERA_TEST_MARK", exit=3)
    proc = start(ENTRY, spec, tmp_path / "child.log", {**os.environ, "TESSERA_TEST_MARK": "m-42"}, listener=listener)
    assert proc.wait(30) == 3 and proc.returncode == 3 and proc.poll() == 3
    assert listener.fileno() == -1  # handed down and closed here
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen["pid"] == proc.pid and seen["pid"] != os.getpid()
    assert seen["name"] == "tessera-party"  # what ps, top and psutil show
    assert seen["launcher"] == str(os.getpid()) and seen["ppid"] != os.getpid()  # its parent is the server
    assert seen["argv"] == [ENTRY, str(spec)] and seen["cwd"] == str(ROOT)
    assert seen["env"] == "m-42" and seen["port"] == port  # the listener, at the number its config names
    assert (tmp_path / "child.log").read_text().splitlines() == ["hello from the child", "and its stderr"]


def test_environment_and_umask_are_the_launchers_at_the_time_of_the_start(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    forkserver.warm()  # the server started before the variable and the mask were set
    monkeypatch.setenv("TESSERA_TEST_MARK", "set-later")
    old = os.umask(0o077)
    try:
        proc = start(ENTRY, _spec(tmp_path, env_var="TESSERA_TEST_MARK"), tmp_path / "child.log")
    finally:
        os.umask(old)
    assert proc.wait(30) == 0
    assert json.loads((tmp_path / "seen.json").read_text())["env"] == "set-later"
    assert (tmp_path / "seen.json").stat().st_mode & 0o777 == 0o600  # written by the child under the mask


@pytest.mark.parametrize(("how", "code"), [("terminate", -signal.SIGTERM), ("kill", -signal.SIGKILL)])
def test_signals_reach_the_child_and_wait_times_out_while_it_runs(tmp_path: Path, how: str, code: int) -> None:
    proc = start(ENTRY, _spec(tmp_path, sleep=60), tmp_path / "child.log")
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(0.3)
    assert proc.poll() is None and _alive(proc.pid)
    getattr(proc, how)()
    assert proc.wait(15) == code
    assert not _alive(proc.pid)
    getattr(proc, how)()  # a second signal to an ended process does nothing


def test_a_failing_entry_exits_1_with_its_traceback_in_the_log(tmp_path: Path) -> None:
    proc = start(ENTRY, tmp_path / "no-such-spec.json", tmp_path / "child.log")
    assert proc.wait(30) == 1
    log = (tmp_path / "child.log").read_text()
    assert "FileNotFoundError" in log and "no-such-spec.json" in log


def test_a_killed_server_takes_its_children_and_is_started_again(tmp_path: Path) -> None:
    orphan = start(ENTRY, _spec(tmp_path, sleep=60), tmp_path / "orphan.log")
    server = forkserver._current()
    server.proc.kill()
    assert _gone(orphan.pid)  # the child exits once its server is gone
    assert orphan.wait(15) < 0
    proc = start(ENTRY, _spec(tmp_path, exit=5), tmp_path / "child.log")
    assert proc.wait(30) == 5 and forkserver._current() is not server


def test_no_child_outlives_its_launcher(tmp_path: Path) -> None:
    launcher = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from tessera.runtime.launcher import start
        p = start({ENTRY!r}, Path(sys.argv[1]), Path(sys.argv[2]))
        print(p.pid, flush=True)
        time.sleep(60)
    """)
    spec = _spec(tmp_path, sleep=60)
    outer = subprocess.Popen([sys.executable, "-c", launcher, str(spec), str(tmp_path / "child.log")],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    try:
        assert outer.stdout is not None
        child = int(outer.stdout.readline())
        assert _alive(child)
        outer.kill()  # no clean-up of its own: the server sees its socket close
        outer.wait()
        assert _gone(child)
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.wait()


def test_terminate_reaches_a_child_another_thread_waits_for(tmp_path: Path) -> None:
    """A node's watcher waits on the process while a cancel terminates it from another thread."""
    proc = start(ENTRY, _spec(tmp_path, sleep=60), tmp_path / "child.log")
    codes: list[int] = []
    watcher = threading.Thread(target=lambda: codes.append(proc.wait(60)))
    watcher.start()
    time.sleep(0.2)
    proc.terminate()
    watcher.join(15)
    assert not watcher.is_alive() and codes == [-signal.SIGTERM] and proc.poll() == -signal.SIGTERM
