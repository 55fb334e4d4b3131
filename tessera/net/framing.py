"""Length-prefixed frames: a fixed 40-byte header, then the payload (raw bytes).

Header, network byte order::

    magic "TSRA" | version u8 | type u8 | 2 reserved | session id 16 B | sequence u64 | length u64

Sequence numbers count frames per direction of a connection from 0, strictly by one, so a
replayed or reordered frame is detected. The payload length is checked against a hard maximum
before anything is allocated. Every violation raises :class:`~tessera.errors.FrameError`.
"""

from __future__ import annotations

import enum
import struct
from typing import Protocol

from tessera.errors import FrameError, TransportError

__all__ = ["FrameType", "HEADER", "HEADER_SIZE", "PROTOCOL_VERSION", "encode_header", "decode_header",
           "FrameReader", "ConnectionClosed", "DEFAULT_MAX_FRAME"]

MAGIC = b"TSRA"
PROTOCOL_VERSION = 1
HEADER = struct.Struct("!4sBB2x16sQQ")
HEADER_SIZE = HEADER.size
DEFAULT_MAX_FRAME = 1 << 30


class FrameType(enum.IntEnum):
    HELLO = 1
    DATA = 2
    ABORT = 3
    CLOSE = 4


class ConnectionClosed(TransportError):
    """The peer closed the connection at a frame boundary."""


def encode_header(kind: FrameType, session_id: bytes, seq: int, length: int) -> bytes:
    """The header of a frame carrying ``length`` payload bytes."""
    return HEADER.pack(MAGIC, PROTOCOL_VERSION, int(kind), session_id, seq, length)


def decode_header(
    data: bytes | bytearray | memoryview, session_id: bytes, expected_seq: int, max_frame: int
) -> tuple[FrameType, int]:
    """Validate a header; returns its type and payload length."""
    if len(data) != HEADER_SIZE:
        raise FrameError(f"a frame header has {HEADER_SIZE} bytes, got {len(data)}")
    magic, version, kind, sid, seq, length = HEADER.unpack(data)
    if magic != MAGIC:
        raise FrameError("not a Tessera frame (bad magic bytes)")
    if version != PROTOCOL_VERSION:
        raise FrameError(f"frame protocol version {version} is not supported (this side speaks {PROTOCOL_VERSION})")
    try:
        ftype = FrameType(kind)
    except ValueError:
        raise FrameError(f"unknown frame type {kind}") from None
    if sid != session_id:
        raise FrameError("frame belongs to another session")
    if seq != expected_seq:
        what = "replayed" if seq < expected_seq else "out of order"
        raise FrameError(f"frame sequence number {seq} {what} (expected {expected_seq})")
    if length > max_frame:
        raise FrameError(f"frame of {length} bytes exceeds the maximum of {max_frame}")
    return ftype, length


class _Readable(Protocol):
    def recv_into(self, buffer: memoryview, nbytes: int = ...) -> int: ...


class FrameReader:
    """Reads validated frames from a socket-like object with ``recv_into``."""

    def __init__(self, sock: _Readable, session_id: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._sock = sock
        self._session = session_id
        self._max = max_frame
        self._seq = 0
        self._header = bytearray(HEADER_SIZE)

    def _fill(self, view: memoryview, at_boundary: bool) -> None:
        got, n = 0, len(view)
        while got < n:
            k = self._sock.recv_into(view[got:], min(n - got, 1 << 22))
            if k == 0:
                if at_boundary and got == 0:
                    raise ConnectionClosed("the peer closed the connection")
                raise FrameError(f"truncated frame: connection closed after {got} of {n} bytes")
            got += k

    def read(self) -> tuple[FrameType, bytearray]:
        """The next frame's type and payload."""
        self._fill(memoryview(self._header), at_boundary=True)
        kind, length = decode_header(self._header, self._session, self._seq, self._max)
        payload = bytearray(length)
        if length:
            self._fill(memoryview(payload), at_boundary=False)
        self._seq += 1
        return kind, payload
