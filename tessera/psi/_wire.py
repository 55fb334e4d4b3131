"""PSI messages: a small header and raw parts (no pickle, no per-element framing).

A message is ``b"TPSI" | kind (1 byte) | number of parts (1 byte) | part lengths (uint64 LE each)``
followed by the parts: arrays of 32-byte encodings, little-endian uint32 positions, 32-byte
scalars, or UTF-8 JSON for the hello. The transport below already guarantees order, integrity and
the session; the kind byte catches two parties that disagree on the step they are in.
"""

from __future__ import annotations

import enum
import struct

import numpy as np

__all__ = ["Kind", "WireError", "pack", "message", "unpack", "encode_positions", "decode_positions", "MAX_ELEMENTS"]

MAGIC = b"TPSI"
MAX_ELEMENTS = 2**31  # positions travel as uint32; far above what ECDH PSI can process here


class Kind(enum.IntEnum):
    """The step a message belongs to."""

    HELLO = 1
    ENCODED = 2  # a party's own list under its key
    HOP = 3  # a peer's list under one more key
    REVEAL = 4  # probe positions and scalars, to the party that finishes a list
    REPLY = 5  # a list returned to its owner or the matcher under all keys
    SHUFFLED = 6  # a finished list, shuffled by the party that finished it
    CANDIDATES = 7  # the encodings common to two lists, for the third party
    RESULT = 8  # sizes, positions or selections
    ROUTE = 9  # positions forwarded to a list's owner
    OT_BASE = 10  # OPRF PSI: a base-OT message (A, or the B_i)
    OT_EXT = 11  # OPRF PSI: the cuckoo attempt and the OT-extension matrix U
    OPRF = 12  # OPRF PSI: the sender's OPRF values, sorted


class WireError(Exception):
    """Internal: a message does not have the expected form (the caller names the peer)."""


_HEAD = struct.Struct("<4sBB")


def pack(kind: Kind, *parts: bytes | bytearray | memoryview) -> bytes:
    """One message of ``kind`` made of ``parts``."""
    lengths = [len(memoryview(p).cast("B")) for p in parts]
    head = _HEAD.pack(MAGIC, int(kind), len(parts)) + struct.pack(f"<{len(parts)}Q", *lengths)
    return b"".join([head, *parts])


def message(kind: Kind, lengths: list[int]) -> tuple[bytearray, list[memoryview]]:
    """A zeroed message of ``kind`` with parts of ``lengths`` bytes, and writable views of the parts.

    Filling the parts in place and sending the buffer equals :func:`pack` without copying them.
    """
    head = _HEAD.pack(MAGIC, int(kind), len(lengths)) + struct.pack(f"<{len(lengths)}Q", *lengths)
    buf = bytearray(len(head) + sum(lengths))
    buf[: len(head)] = head
    view, parts, at = memoryview(buf), [], len(head)
    for n in lengths:
        parts.append(view[at : at + n])
        at += n
    return buf, parts


def unpack(payload: bytes | bytearray | memoryview, kind: Kind, nparts: int) -> list[memoryview]:
    """The parts of a message that must be of ``kind`` with ``nparts`` parts."""
    view = memoryview(payload)
    if len(view) < _HEAD.size:
        raise WireError(f"sent a truncated message where a {kind.name} message was expected")
    magic, k, n = _HEAD.unpack_from(view)
    if magic != MAGIC:
        raise WireError(f"sent a message that is not a PSI message where {kind.name} was expected")
    if k != kind:
        got = Kind(k).name if k in Kind._value2member_map_ else str(k)
        raise WireError(f"sent a {got} message where {kind.name} was expected (the parties disagree on the step)")
    if n != nparts:
        raise WireError(f"sent a {kind.name} message with {n} parts, expected {nparts}")
    end = _HEAD.size + 8 * n
    if len(view) < end:
        raise WireError(f"sent a truncated {kind.name} message")
    lengths = struct.unpack_from(f"<{n}Q", view, _HEAD.size)
    if end + sum(lengths) != len(view):
        raise WireError(f"sent a {kind.name} message whose parts do not add up to its length")
    parts = []
    for length in lengths:
        parts.append(view[end : end + length])
        end += length
    return parts


def encode_positions(pos: np.ndarray) -> bytes:
    """Positions as little-endian uint32."""
    return np.asarray(pos, dtype="<u4").tobytes()


def decode_positions(part: memoryview, limit: int, count: int | None = None, distinct: bool = True) -> np.ndarray:
    """Positions below ``limit`` (and ``count`` of them, all distinct, if asked) as int64."""
    if len(part) % 4:
        raise WireError("sent positions whose length is not a multiple of 4 bytes")
    pos = np.frombuffer(part, dtype="<u4").astype(np.int64)
    if count is not None and len(pos) != count:
        raise WireError(f"sent {len(pos)} positions where {count} were expected")
    if len(pos) and int(pos.max()) >= limit:
        raise WireError(f"sent a position beyond the {limit} elements of the list")
    if distinct and len(np.unique(pos)) != len(pos):
        raise WireError("sent repeated positions")
    return pos
