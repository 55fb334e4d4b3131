"""A warm process that forks party processes: each one starts with Tessera already imported.

A party process is ``python -m MODULE CONFIG`` in effect, but importing Tessera (numpy, pydantic,
DuckDB, cryptography, the analyses) costs about a second per process, and three parties starting
at once on two cores pay it in contention. The fork server imports the party entry modules once
and forks one child per party on request: the child is a separate OS process like any other (its
own pid, memory, sockets and TLS sessions; nothing is shared with its siblings after the fork),
it only skips the imports.

One server per launching process, started on first use (:func:`warm` starts it early). Requests
travel over a Unix socket pair: the module, the config path, the log, the environment and working
directory the launcher would have given a subprocess, and the endpoint's listening socket (as a
file descriptor, placed in the child at the number its config names). Each child has its own
socket pair to the launcher, on which the server reports its pid and, once it has reaped it, its
exit code (negative for a signal, as :mod:`subprocess` reports it); kill and terminate requests
go the other way, so a signal never reaches a reused pid.

The server stays single-threaded, so forking it is safe. It exits when its launcher goes (its end
of the socket closes), killing any child still running; a child exits when the server is gone
(it watches its parent), so no party outlives the process that started it. Nothing secret passes through the server: configs are paths, and every child draws
its own randomness from the operating system after the fork.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

from tessera.errors import TransportError

__all__ = ["ForkedProcess", "spawn", "warm"]

#: Names, in a child's environment, the pid of the process that launched it (a node, ``run_local``).
LAUNCHER_ENV = "TESSERA_LAUNCHER_PID"
#: Imported by the server before it forks anything: what every party process needs.
PRELOAD = ("tessera.jobs.party", "tessera.runtime.party")
_MAX_REQUEST = 1 << 17  # one request is one message of the control socket (SOCK_SEQPACKET)


class ForkedProcess:
    """A party process forked by the server, with the part of :class:`subprocess.Popen`'s
    interface a launcher uses: ``pid``, ``returncode``, :meth:`poll`, :meth:`wait`, :meth:`kill`,
    :meth:`terminate`."""

    def __init__(self, link: socket.socket, pid: int, report: bytes = b"") -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._link = link
        self._lock = threading.Lock()
        self._buffer = b""
        self._take(report)  # a child that ended at once: its exit report came with the pid

    def _take(self, chunk: bytes) -> None:
        """Take bytes of the server's report: its exit line (``X<code>``) sets ``returncode``."""
        self._buffer += chunk
        if b"\n" in self._buffer:
            line = self._buffer.partition(b"\n")[0]
            self.returncode = int(line[1:]) if line.startswith(b"X") else -signal.SIGKILL

    def _read(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds (None: without limit) for the server's report of the
        exit code. Several threads may wait at once (a watcher's ``wait``, a ``poll``); none
        holds a lock while it waits, so a ``terminate`` from a third is sent at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = select.poll()  # not select(): a node's descriptors may number past FD_SETSIZE
        waiting.register(self._link, select.POLLIN)
        while self.returncode is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not waiting.poll(None if left is None else left * 1000):
                return
            with self._lock:
                if self.returncode is not None:
                    return
                try:
                    chunk = self._link.recv(64, socket.MSG_DONTWAIT)
                except BlockingIOError:  # another waiter read it
                    continue
                if not chunk:  # the server is gone without a report: the child went with it
                    self.returncode = -signal.SIGKILL
                    return
                self._take(chunk)

    def poll(self) -> int | None:
        self._read(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._read(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"party process {self.pid}", timeout or 0.0)
        return self.returncode

    def _signal(self, command: bytes) -> None:
        if self.returncode is not None:
            return
        with contextlib.suppress(OSError):  # the server reaped it meanwhile (or is gone, and the child with it)
            self._link.sendall(command)

    def kill(self) -> None:
        self._signal(b"K")

    def terminate(self) -> None:
        self._signal(b"T")


class _Server:
    """The launcher's side of one fork server process."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        main = f"from tessera.runtime.forkserver import serve; serve({theirs.fileno()})"
        self.proc = subprocess.Popen([sys.executable, "-c", main],
                                     pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL)
        theirs.close()
        self.control = mine
        self.owner = os.getpid()  # a forked copy of the launcher starts its own server
        self.ready = False
        self.lock = threading.Lock()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _wait_ready(self, timeout: float = 60.0) -> None:
        if self.ready:
            return
        self.control.settimeout(timeout)
        try:
            got = self.control.recv(1)
        except TimeoutError:
            got = b""
        finally:
            self.control.settimeout(None)
        if got != b"R":
            raise TransportError("the party fork server did not start (see its output above)")
        self.ready = True

    def spawn(self, request: dict[str, Any], listener: socket.socket | None) -> ForkedProcess:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            body = json.dumps(request).encode()
            if len(body) > _MAX_REQUEST:
                raise TransportError(f"a party's environment is too large to start it ({len(body)} bytes)")
            fds = [theirs.fileno()] + ([] if listener is None else [listener.fileno()])
            with self.lock:
                self._wait_ready()
                socket.send_fds(self.control, [body], fds)
        finally:
            theirs.close()
        mine.settimeout(60.0)
        try:
            line = b""
            while not line.endswith(b"\n"):
                chunk = mine.recv(256)
                if not chunk:
                    break
                line += chunk
        except TimeoutError:
            line = b""
        finally:
            mine.settimeout(None)
        if not line.startswith(b"P"):
            mine.close()
            why = line[1:].decode(errors="replace").strip() if line.startswith(b"E") else "no answer"
            raise TransportError(f"the party fork server could not start {request['module']}: {why}")
        first, _, rest = line.partition(b"\n")
        return ForkedProcess(mine, int(first[1:]), rest)

    def close(self) -> None:
        """End the server: it sees its socket close (even while it still imports) and exits,
        killing any child still running; not waited for, so a short command exits at once."""
        self.control.close()


_server: _Server | None = None
_server_lock = threading.Lock()


def _current() -> _Server:
    global _server
    with _server_lock:
        if _server is None or _server.owner != os.getpid() or not _server.alive():
            if _server is not None:
                _server.control.close()  # this process's copy of the socket
            else:
                atexit.register(_close)
            _server = _Server()
        return _server


def _close() -> None:
    with _server_lock:
        if _server is not None:
            _server.close()


def warm() -> None:
    """Start this process's fork server if it is not running (it imports while the caller goes
    on: writing data, planning). A program that will start parties can call it before its own
    imports (this module imports nothing heavy), so the two imports overlap."""
    _current()


def spawn(module: str, config: str, log: str, env: Mapping[str, str] | None = None,
          listener: socket.socket | None = None) -> ForkedProcess:
    """Fork ``module``'s ``main([config])`` in a child of the fork server, with stdout and stderr
    in ``log``, ``env`` (default: this process's environment), this process's working directory
    and umask; ``listener`` is placed in the child at the descriptor number it has here."""
    request = {"module": module, "config": config, "log": log, "cwd": os.getcwd(), "umask": _umask(),
               "launcher": os.getpid(),
               "env": dict(os.environ if env is None else env),
               "listen_fd": None if listener is None else listener.fileno()}
    for attempt in (0, 1):  # a server that died (killed from outside) is started again once
        server = _current()
        try:
            return server.spawn(request, listener)
        except (BrokenPipeError, ConnectionResetError):
            if attempt:
                raise TransportError("the party fork server is gone") from None
    raise AssertionError("unreachable")


def _umask() -> int:
    """This process's file-creation mask (read, not changed: ``os.umask`` would set it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    return 0o022


# ---- the server process -------------------------------------------------------------------


def _recv_request(control: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """One request and its descriptors, or None once the launcher has closed its end."""
    try:
        data, fds, _, _ = socket.recv_fds(control, _MAX_REQUEST, 2)
    except OSError:  # reset: the launcher is gone
        return None
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    request: dict[str, Any] = json.loads(data)
    return request, fds


def _child(request: dict[str, Any], link_fd: int, listener_fd: int | None, closing: list[int]) -> None:
    """In the forked child: become the party process ``request`` describes, then exit."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in closing:  # the server's control socket, wake-up pipe and other children's links
            os.close(fd)
        os.close(link_fd)
        server_pid = os.getppid()
        os.chdir(request["cwd"])
        os.umask(int(request["umask"]))
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        if listener_fd is not None:
            target = int(request["listen_fd"])
            if listener_fd != target:
                os.dup2(listener_fd, target)
                os.close(listener_fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[LAUNCHER_ENV] = str(request["launcher"])
        _exit_with(server_pid)
        _name_process(b"tessera-party")
        sys.argv = [request["module"], request["config"]]
        main = importlib.import_module(request["module"]).main
        code = int(main([request["config"]]))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _name_process(name: bytes) -> None:
    """Name this process ``name`` where ``ps -o comm``, ``top`` and psutil's ``name()`` look (its
    command line stays the server's)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(15, name, 0, 0, 0)  # PR_SET_NAME


def _exit_with(server_pid: int) -> None:
    """Exit as soon as the fork server is gone (it is gone when its launcher is: a node killed
    mid-job, a test runner stopped): a party must not go on computing with nobody to report to;
    its peers then see the link close and abort."""

    def watch() -> None:
        while os.getppid() == server_pid:
            time.sleep(0.2)
        os._exit(3)

    threading.Thread(target=watch, daemon=True, name="tessera-server-watch").start()


def serve(control_fd: int) -> None:
    """The server's loop: fork a child per request, report pids and exit codes, pass on kill
    and terminate requests, and end (killing its children) when the launcher goes."""
    _name_process(b"tessera-forksrv")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is for the launcher; it ends when the launcher does
    for module in PRELOAD:
        importlib.import_module(module)
    control = socket.socket(fileno=control_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    links: dict[int, socket.socket] = {}  # child pid -> its launcher's link, until the child is reaped
    heard: set[int] = set()  # children whose launcher may still send kill or terminate
    try:
        control.sendall(b"R")
    except OSError:  # the launcher is gone already (a node that failed to start)
        return
    while True:
        watched: list[Any] = [control, wake_r, *(links[p] for p in heard)]
        try:
            ready, _, _ = select.select(watched, [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        if control in ready:
            got = _recv_request(control)
            if got is None:
                break
            request, fds = got
            link = socket.socket(fileno=fds[0])
            listener_fd = fds[1] if len(fds) > 1 else None
            closing = [control.fileno(), wake_r, wake_w, *(s.fileno() for s in links.values())]
            try:
                pid = os.fork()
            except OSError as e:
                with contextlib.suppress(OSError):
                    link.sendall(b"E" + str(e).encode() + b"\n")
                link.close()
            else:
                if pid == 0:
                    _child(request, link.fileno(), listener_fd, closing)
                with contextlib.suppress(OSError):  # a launcher gone meanwhile: the child is killed below
                    link.sendall(b"P%d\n" % pid)
                links[pid] = link
                heard.add(pid)
            if listener_fd is not None:
                os.close(listener_fd)
        for pid in list(heard):
            if links[pid] in ready:
                try:
                    command = links[pid].recv(16)
                except OSError:
                    command = b""
                if not command:  # the launcher dropped its handle: the child runs on
                    heard.discard(pid)
                elif b"K" in command or b"T" in command:
                    os.kill(pid, signal.SIGKILL if b"K" in command else signal.SIGTERM)
        _reap(links)
        heard &= set(links)
    for pid in links:
        os.kill(pid, signal.SIGKILL)
    while links:
        _reap(links, block=True)


def _reap(links: dict[int, socket.socket], block: bool = False) -> None:
    """Report the exit code of every child that has ended (``block``: wait for one first)."""
    while links:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            links.clear()
            return
        if pid == 0:
            return
        block = False
        link = links.pop(pid, None)
        if link is not None:
            with contextlib.suppress(OSError):  # the launcher dropped its handle
                link.sendall(b"X%d\n" % os.waitstatus_to_exitcode(status))
            link.close()

