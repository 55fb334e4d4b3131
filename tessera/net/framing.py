"""Length-prefixed frames: a fixed 40-byte header, then the payload (raw bytes).

Header, network byte order (``!4sBB2x16sQQ``)::

    magic "TSRA" | version u8 | type u8 | 2 reserved | session id 16 B | sequence u64 | length u64

Sequence numbers count the frames of one direction of one connection from 0, strictly by one,
so a replayed, dropped or reordered frame is detected. The payload length is checked against a
hard maximum before anything is allocated. Every violation raises
:class:`~tessera.errors.FrameError`; a stream that ends cleanly between two frames is not an
error (:meth:`FrameReader.read` returns ``None``).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import NamedTuple, Protocol

from tessera.errors import FrameError

__all__ = [
    "DEFAULT_MAX_FRAME",
    "HEADER_SIZE",
    "MAGIC",
    "PROTOCOL_VERSION",
    "SESSION_ID_SIZE",
    "Frame",
    "FrameReader",
    "FrameType",
    "Header",
    "decode_header",
    "encode_header",
]

MAGIC = b"TSRA"
PROTOCOL_VERSION = 1
SESSION_ID_SIZE = 16
DEFAULT_MAX_FRAME = 1 << 30
_HEADER = struct.Struct("!4sBB2x16sQQ")
HEADER_SIZE = _HEADER.size
_U64 = (1 << 64) - 1
# one read call asks for at most this much (TLS hands out one 16 KiB record per call anyway)
_READ_CHUNK = 1 << 24


class FrameType(enum.IntEnum):
    """What a frame carries."""

    HELLO = 1  # set-up: the sender's name (JSON)
    DATA = 2  # a protocol message (raw bytes)
    ABORT = 3  # the sender stops the computation; payload: the reason (UTF-8)
    CLOSE = 4  # the sender closes the session; nothing follows


class Header(NamedTuple):
    kind: FrameType
    session_id: bytes
    seq: int
    length: int


class Frame(NamedTuple):
    kind: FrameType
    session_id: bytes
    seq: int
    payload: bytearray | memoryview


def encode_header(kind: FrameType, session_id: bytes, seq: int, length: int) -> bytes:
    """The header of frame number ``seq`` carrying ``length`` payload bytes."""
    if len(session_id) != SESSION_ID_SIZE:
        raise ValueError(f"a session id has {SESSION_ID_SIZE} bytes, got {len(session_id)}")
    if not (0 <= seq <= _U64 and 0 <= length <= _U64):
        raise ValueError("sequence number and length must fit in 64 bits")
    return _HEADER.pack(MAGIC, PROTOCOL_VERSION, int(kind), session_id, seq, length)


def decode_header(
    data: bytes | bytearray | memoryview,
    *,
    session_id: bytes | None,
    expected_seq: int,
    max_frame: int,
    source: str = "the peer",
) -> Header:
    """Parse and validate one header.

    ``session_id=None`` skips the session check (the caller compares it itself); ``source``
    names the sender in error messages. Raises :class:`FrameError` on any violation.
    """
    if len(data) != HEADER_SIZE:
        raise FrameError(f"a frame header has {HEADER_SIZE} bytes, got {len(data)} from {source}")
    magic, version, kind, sid, seq, length = _HEADER.unpack(data)
    if magic != MAGIC:
        raise FrameError(f"{source} sent something that is not a Tessera frame (bad magic bytes {magic!r})")
    if version != PROTOCOL_VERSION:
        raise FrameError(
            f"{source} speaks frame protocol version {version}; this side speaks {PROTOCOL_VERSION}"
        )
    try:
        ftype = FrameType(kind)
    except ValueError:
        raise FrameError(f"{source} sent a frame of unknown type {kind}") from None
    if length > max_frame:
        raise FrameError(f"{source} sent a frame of {length} bytes, over the maximum of {max_frame}")
    if session_id is not None and sid != session_id:
        raise FrameError(
            f"{source} sent a frame of another session (session id {sid.hex()}, expected {session_id.hex()})"
        )
    if seq != expected_seq:
        what = "replayed" if seq < expected_seq else "out-of-order (frames missing)"
        raise FrameError(f"{source} sent a {what} frame: sequence number {seq}, expected {expected_seq}")
    return Header(ftype, sid, seq, length)


class _Readable(Protocol):
    def recv_into(self, buffer: memoryview, nbytes: int = ..., /) -> int: ...


def _bytearray(n: int) -> bytearray:
    return bytearray(n)


class FrameReader:
    """Reads validated frames, one after the other, from a socket-like object with ``recv_into``.

    ``alloc(n)`` makes the writable buffer a payload of ``n`` bytes is received into (directly,
    without a copy); it is called only after the length passed the ``max_frame`` check.
    """

    def __init__(
        self,
        stream: _Readable,
        session_id: bytes | None,
        max_frame: int = DEFAULT_MAX_FRAME,
        *,
        source: str = "the peer",
        alloc: Callable[[int], bytearray | memoryview] = _bytearray,
    ) -> None:
        self._stream = stream
        self._session = session_id
        self._max = max_frame
        self._source = source
        self._alloc = alloc
        self._seq = 0
        self._header = bytearray(HEADER_SIZE)

    @property
    def next_seq(self) -> int:
        return self._seq

    def read(self) -> Frame | None:
        """The next frame, or ``None`` if the stream ended cleanly before it."""
        if not self._fill(memoryview(self._header), at_boundary=True):
            return None
        h = decode_header(
            self._header, session_id=self._session, expected_seq=self._seq, max_frame=self._max, source=self._source
        )
        payload = self._alloc(h.length)
        if h.length:
            self._fill(memoryview(payload).cast("B"), at_boundary=False)
        self._seq += 1
        return Frame(h.kind, h.session_id, h.seq, payload)

    def _fill(self, view: memoryview, at_boundary: bool) -> bool:
        got, n = 0, len(view)
        while got < n:
            k = self._stream.recv_into(view[got:], min(n - got, _READ_CHUNK))
            if not k:
                if at_boundary and got == 0:
                    return False
                part = "header" if at_boundary else "payload"
                raise FrameError(
                    f"truncated frame: {self._source} closed the connection after {got} of {n} {part} bytes"
                )
            got += k
        return True
