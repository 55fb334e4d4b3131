"""Starting party processes and reading what they report: one launcher for every caller.

The local cluster (:func:`tessera.runtime.cluster.run_cluster`, :func:`run_mesh`), ``run_local``
and the node's job runner all start an endpoint (``MODULE.main([CONFIG.json])``, what
``python -m MODULE CONFIG.json`` runs, forked warm by :mod:`~tessera.runtime.forkserver`) with
:func:`start`, and read its :class:`ProcessReport` with :func:`read_report`. A failed endpoint's
report carries a :class:`Failure`, whose :attr:`~Failure.kind` is the one classification of
errors: ``aborted`` (a party or the network stopped the session: :data:`ABORT_ERRORS`) or
``failed`` (this endpoint's own error).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tessera import errors
from tessera.errors import ProtocolAbort, TesseraError, TransportError
from tessera.mpc.session import Session
from tessera.net.channel import Channel
from tessera.net.identity import Identity
from tessera.net.tls import Endpoint, connect_mesh
from tessera.runtime import forkserver, jsonable
from tessera.runtime.config import PartyConfig
from tessera.runtime.forkserver import ForkedProcess
from tessera.runtime.inprocess import run_dealer, run_input, run_party

__all__ = ["ABORT_ERRORS", "Failure", "ProcessReport", "start", "read_report", "serve", "serve_input", "write_report"]

#: Errors that mean the session was stopped from outside this endpoint (a peer aborted, a link
#: closed, a frame or a peer's identity was refused): the job is ``aborted``, not ``failed``.
ABORT_ERRORS = frozenset({"ProtocolAbort", "TransportError", "PeerAuthError", "FrameError"})


class Failure(BaseModel):
    """Why an endpoint stopped: the error's class name and message (and, for an abort, who)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: str
    message: str = ""
    aborted_by: str | None = None
    reason: str | None = None
    trace: str | None = None

    @classmethod
    def of(cls, e: BaseException) -> Failure:
        trace = None if isinstance(e, TesseraError) else traceback.format_exc(limit=5)
        if isinstance(e, ProtocolAbort):
            return cls(error=type(e).__name__, message=str(e), aborted_by=e.party, reason=e.reason)
        return cls(error=type(e).__name__, message=str(e), trace=trace)

    @property
    def kind(self) -> Literal["aborted", "failed"]:
        return "aborted" if self.error in ABORT_ERRORS else "failed"

    def to_error(self, party: str) -> TesseraError:
        """The error to raise again in the launcher (the same class where it is Tessera's own)."""
        if self.error == "ProtocolAbort":
            return ProtocolAbort(self.aborted_by or "?", self.reason or self.message)
        cls = getattr(errors, self.error, None)
        if isinstance(cls, type) and issubclass(cls, TesseraError) and cls is not errors.PolicyDenied:
            try:
                return cls(self.message)
            except TypeError:
                pass
        return TesseraError(f"party {party!r} failed with {self.error}: {self.message}")


class ProcessReport(BaseModel):
    """What one endpoint process reports: its result (plain JSON), communication figures and wall
    time, or its failure."""

    model_config = ConfigDict(extra="forbid")

    party: str
    ok: bool
    result: Any = None
    comm: dict[str, Any] = {}
    seconds: float = 0.0
    failure: Failure | None = None

    @property
    def bytes_sent(self) -> int:
        return int(self.comm.get("bytes_sent", 0))

    @property
    def rounds(self) -> int:
        return int(self.comm.get("rounds", 0))


def listen(host: str, port: int = 0, backlog: int = 16) -> socket.socket:
    """A listening socket on ``host:port`` (0: a free port) for an endpoint this launcher starts:
    held from the moment the port is chosen, then handed to the endpoint (``listen_fd``)."""
    try:
        sock = socket.create_server((host, port), backlog=backlog)
    except OSError as e:
        raise TransportError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock


def start(module: str, config: Path, log: Path, env: Mapping[str, str] | None = None,
          listener: socket.socket | None = None) -> ForkedProcess:
    """Start the endpoint ``python -m module config`` would start, with its output in ``log``:
    forked from this process's warm fork server (:mod:`tessera.runtime.forkserver`: Tessera
    already imported). ``listener`` (whose fd the config names as ``listen_fd``) is handed down to
    the process, and closed here once it has it."""
    try:
        return forkserver.spawn(module, str(config), str(log), env, listener)
    finally:
        if listener is not None:
            listener.close()


def read_report(path: Path) -> ProcessReport | None:
    """The report an endpoint wrote at ``path``, or None if it wrote none (or an unreadable one)."""
    try:
        return ProcessReport.model_validate(jsonable.loads(path.read_text()))
    except (OSError, ValueError, ValidationError):
        return None


def write_report(report: ProcessReport, path: str | Path) -> None:
    Path(path).write_text(jsonable.dumps(report.model_dump()))


def _connect(cfg: PartyConfig) -> Channel:
    """This endpoint's links to the others of ``cfg``, over mutual TLS (on its inherited listener)."""
    identity = Identity.load(cfg.identity_dir, cfg.name)
    endpoints = [Endpoint(e.name, e.host, e.port, e.fingerprint, e.certificate) for e in cfg.endpoints]
    listener = None if cfg.listen_fd is None else socket.socket(fileno=cfg.listen_fd)
    return connect_mesh(cfg.index, endpoints, identity, bytes.fromhex(cfg.session_id), timeout=cfg.timeout,
                        connect_timeout=cfg.connect_timeout, max_frame=cfg.max_frame, listener=listener)


def serve(cfg: PartyConfig, program: Callable[[Session], Any] | None) -> ProcessReport:
    """Join the mesh over mutual TLS and run ``program`` (None: serve as the dealer); never raises."""
    start_t = time.perf_counter()
    try:
        channel = _connect(cfg)
        done = threading.Event()
        now = _Progress()
        reporter = None
        if cfg.progress_path:
            reporter = threading.Thread(target=_report_progress, args=(channel, now, cfg.progress_path, start_t, done),
                                        daemon=True, name="tessera-progress")
            reporter.start()
        try:
            if program is None:
                result: Any = {"served": run_dealer(channel, len(cfg.parties))}
            else:
                result = run_party(program, cfg.protocol, channel, cfg.parties, cfg.frac_bits, now.report)
        finally:
            done.set()
            if reporter is not None:
                reporter.join(5.0)  # its last write has the final figures
            channel.close()
    except BaseException as e:
        print(f"{cfg.name}: {type(e).__name__}: {e}", file=sys.stderr)
        return ProcessReport(party=cfg.name, ok=False, failure=Failure.of(e))
    return ProcessReport(party=cfg.name, ok=True, result=jsonable.to_plain(result), comm=channel.stats.as_dict(),
                         seconds=time.perf_counter() - start_t)


class _Progress:
    """The session's latest progress report (fraction, stage), for the reporting thread."""

    def __init__(self) -> None:
        self.fraction, self.stage = 0.0, "starting the secure session"

    def report(self, fraction: float, stage: str) -> None:
        self.fraction, self.stage = fraction, stage


def serve_input(cfg: PartyConfig, program: Callable[[Channel], Any]) -> ProcessReport:
    """As an input party (a data owner that does not compute): link to the parties over mutual
    TLS, run ``program(channel)`` (it sends this owner's inputs) and leave; never raises."""
    start_t = time.perf_counter()
    try:
        channel = _connect(cfg)
        try:
            result = run_input(program, channel)
        finally:
            channel.close()
    except BaseException as e:
        print(f"{cfg.name}: {type(e).__name__}: {e}", file=sys.stderr)
        return ProcessReport(party=cfg.name, ok=False, failure=Failure.of(e))
    return ProcessReport(party=cfg.name, ok=True, result=jsonable.to_plain(result), comm=channel.stats.as_dict(),
                         seconds=time.perf_counter() - start_t)


def _report_progress(channel: Channel, now: _Progress, path: str, start_t: float, done: threading.Event,
                     every: float = 0.5) -> None:
    """Rewrite ``path`` every ``every`` seconds, and once more at the end, with the session's
    figures so far: rounds, bytes sent, seconds, and the program's progress (``fraction``,
    ``stage``). No values: counts, and the stage of a public computation."""
    target = Path(path)
    tmp = target.with_suffix(".tmp")
    while True:
        finished = done.wait(every)
        stats = channel.stats.as_dict()
        try:
            tmp.write_text(jsonable.dumps({"rounds": stats["rounds"], "bytes_sent": stats["bytes_sent"],
                                           "seconds": round(time.perf_counter() - start_t, 1),
                                           "fraction": round(now.fraction, 4), "stage": now.stage}))
            tmp.replace(target)
        except OSError:  # a progress file that cannot be written never stops the computation
            pass
        if finished:
            return
