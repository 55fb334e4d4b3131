"""One authenticated connection to one peer: a locked sender and a receiver thread.

The receiver thread reads frames as they arrive and queues DATA payloads, so a peer's sends
never wait for this endpoint to call ``recv`` (two endpoints sending large messages to each
other at once cannot deadlock). All links of one endpoint report to one :class:`Mailbox`,
whose condition wakes any waiting ``recv`` when data, an ABORT or a failure arrives.

A TLS socket is used through ``read``/``write`` only, never ``recv``/``send``: after
``SSLSocket.shutdown`` those fall back to the plain socket, these raise instead. Half-closing
and waking blocked calls use the plain socket's ``shutdown``, which leaves the TLS state alone.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import cast

from tessera.errors import FrameError, TransportError
from tessera.net.framing import Frame, FrameReader, FrameType, encode_header

try:  # unsent-bytes query, used to close without a reset losing data (Linux; else skipped)
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - not Linux
    _OUTQ = None

__all__ = ["Mailbox", "Link", "TlsStream", "send_frame", "wait_until"]

_SMALL = 1 << 16  # payloads up to this size go out in one write with their header
_WRITE_CHUNK = 1 << 28  # the ssl module refuses single writes over 2 GiB


class TlsStream:
    """A TLS socket seen as a byte stream with ``recv_into`` (for :class:`FrameReader`)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock

    def recv_into(self, buffer: memoryview, nbytes: int = 0, /) -> int:
        return cast(int, self._sock.read(nbytes or len(buffer), buffer))  # with a buffer: a count


def _as_bytes(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    if not view.c_contiguous:
        raise ValueError("a payload must be a C-contiguous buffer (use numpy.ascontiguousarray)")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def _write_all(sock: socket.socket, view: memoryview) -> None:
    write = sock.write if isinstance(sock, ssl.SSLSocket) else sock.send
    while view:
        n = write(view[:_WRITE_CHUNK])
        view = view[n:]


def send_frame(
    sock: socket.socket, kind: FrameType, session_id: bytes, seq: int, payload: bytes | bytearray | memoryview
) -> None:
    """Write one frame (header, then payload) to ``sock``; the payload is not copied if large."""
    view = _as_bytes(payload)
    header = encode_header(kind, session_id, seq, view.nbytes)
    if view.nbytes <= _SMALL:
        _write_all(sock, memoryview(header + view.tobytes()))
    else:
        _write_all(sock, memoryview(header))
        _write_all(sock, view)


class Mailbox:
    """What all links of one endpoint report to: one condition, and the first ABORT notice."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.aborted: tuple[str, str] | None = None
        self.closed = False


class Link:
    """This endpoint's connection to ``peer`` after set-up (TLS authenticated, HELLO done)."""

    def __init__(
        self, peer: str, sock: ssl.SSLSocket, reader: FrameReader, session_id: bytes, mailbox: Mailbox
    ) -> None:
        self.peer = peer
        self.sock = sock
        self.session_id = session_id
        self.mailbox = mailbox
        self.queue: deque[bytearray | memoryview] = deque()
        #: why no more data will come from this peer: (error class, message), or None
        self.ended: tuple[type[TransportError], str] | None = None
        #: the peer ended the session cleanly (a CLOSE frame), rather than the connection failing
        self.closed_by_peer = False
        self._reader = reader
        self._send_lock = threading.Lock()
        self._send_seq = 1  # frame 0 was the HELLO
        self._receiver = threading.Thread(target=self._receive, name=f"tessera-recv-{peer}", daemon=True)

    def start(self) -> None:
        self._receiver.start()

    def send(self, kind: FrameType, payload: bytes | bytearray | memoryview, lock_timeout: float = -1) -> None:
        """Send one frame; raises OSError if the connection fails, TimeoutError if the
        sender stays busy longer than ``lock_timeout`` seconds."""
        if not self._send_lock.acquire(timeout=lock_timeout):
            raise TimeoutError(f"the link to {self.peer!r} stayed busy")
        try:
            send_frame(self.sock, kind, self.session_id, self._send_seq, payload)
            self._send_seq += 1
        finally:
            self._send_lock.release()

    def _receive(self) -> None:
        cond = self.mailbox.cond
        ended: tuple[type[TransportError], str]
        try:
            while True:
                frame = self._reader.read()
                if frame is None:
                    ended = (TransportError, "closed the connection")
                    break
                if frame.kind is FrameType.CLOSE:
                    ended = (TransportError, "closed the session")
                    self.closed_by_peer = True
                    break
                self._deliver(frame)
        except FrameError as e:
            ended = (FrameError, f"was cut off for a bad frame ({e})")
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            ended = (TransportError, f"connection failed ({type(e).__name__}: {e})")
        except Exception as e:
            ended = (TransportError, f"could not be read from any more ({type(e).__name__})")
        with cond:
            self.ended = ended
            cond.notify_all()

    def _deliver(self, frame: Frame) -> None:
        cond = self.mailbox.cond
        if frame.kind is FrameType.DATA:
            with cond:
                self.queue.append(frame.payload)
                cond.notify_all()
        elif frame.kind is FrameType.ABORT:
            reason = bytes(frame.payload).decode("utf-8", "replace")
            with cond:
                if self.mailbox.aborted is None:
                    self.mailbox.aborted = (self.peer, reason)
                cond.notify_all()
        else:
            raise FrameError(f"{self.peer!r} sent an unexpected {frame.kind.name} frame after set-up")

    # -- closing -------------------------------------------------------------------------------

    def say_goodbye(self, abort: bytes | None, lock_timeout: float) -> None:
        """Send ABORT (if given) and CLOSE, then half-close: the peer reads everything sent
        before, then the end of the stream. Never raises."""
        try:
            if abort is not None:
                self.send(FrameType.ABORT, abort, lock_timeout)
            self.send(FrameType.CLOSE, b"", lock_timeout)
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
        except (OSError, ValueError):
            pass

    def unacknowledged(self) -> int:
        """Bytes this side sent that the peer's TCP has not acknowledged yet (0 if unknown)."""
        if _OUTQ is None:
            return 0
        try:
            return int(struct.unpack("i", fcntl.ioctl(self.sock.fileno(), _OUTQ, b"\0\0\0\0"))[0])
        except (OSError, ValueError):
            return 0

    def terminate(self, join_timeout: float) -> None:
        """Wake every blocked read and write on this link, end the receiver, close the socket."""
        with contextlib.suppress(OSError, ValueError):
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        if self._receiver.is_alive():
            self._receiver.join(join_timeout)
        with contextlib.suppress(OSError):
            self.sock.close()


def wait_until(predicate: Callable[[], bool], deadline: float, step: float = 0.005) -> bool:
    """Poll ``predicate`` until it holds or ``deadline`` (monotonic) passes."""
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True
