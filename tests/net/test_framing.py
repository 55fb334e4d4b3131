"""Frames: header round trips, every rejection (in memory and on a real socket), and fuzzing."""

import contextlib
import io
import os
import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.errors import FrameError
from tessera.net.framing import (
    HEADER_SIZE,
    FrameReader,
    FrameType,
    decode_header,
    encode_header,
)

SID = bytes(range(16))
HOST = "127.0.0.1"


class Stream:
    """A socket-like byte source with ``recv_into`` that hands out at most ``chunk`` bytes a call."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._buf = io.BytesIO(data)
        self._chunk = chunk

    def recv_into(self, view, nbytes=0):
        data = self._buf.read(min(len(view), nbytes or len(view), self._chunk))
        view[: len(data)] = data
        return len(data)


def frame(kind, seq, payload=b"", sid=SID):
    return encode_header(kind, sid, seq, len(payload)) + payload


@given(st.sampled_from(FrameType), st.binary(min_size=16, max_size=16), st.integers(0, 2**64 - 1),
       st.integers(0, 2**64 - 1))
def test_header_round_trip(kind, sid, seq, length):
    h = decode_header(encode_header(kind, sid, seq, length), session_id=sid, expected_seq=seq, max_frame=2**64)
    assert (h.kind, h.session_id, h.seq, h.length) == (kind, sid, seq, length)
    assert len(encode_header(kind, sid, seq, length)) == HEADER_SIZE == 40


def test_encode_refuses_bad_fields():
    with pytest.raises(ValueError, match="16 bytes"):
        encode_header(FrameType.DATA, b"short", 0, 0)
    with pytest.raises(ValueError, match="64 bits"):
        encode_header(FrameType.DATA, SID, -1, 0)


@pytest.mark.parametrize("chunk", [1, 5, 40, 4096])
def test_several_frames_split_arbitrarily_then_a_clean_end(chunk):
    big = os.urandom(100_000)
    data = frame(FrameType.HELLO, 0, b"hi") + frame(FrameType.DATA, 1, big) + frame(FrameType.DATA, 2) \
        + frame(FrameType.ABORT, 3, b"why")
    r = FrameReader(Stream(data, chunk), SID)
    got = [r.read() for _ in range(4)]
    assert [(f.kind, f.seq, bytes(f.payload)) for f in got] == [
        (FrameType.HELLO, 0, b"hi"), (FrameType.DATA, 1, big), (FrameType.DATA, 2, b""), (FrameType.ABORT, 3, b"why")]
    assert r.read() is None  # the stream ended between frames: not an error
    assert r.next_seq == 4


GOOD = frame(FrameType.DATA, 0, b"abcdef")
BAD_FRAMES = {
    "bad magic": (b"XXXX" + GOOD[4:], "not a Tessera frame"),
    "bad version": (GOOD[:4] + bytes([9]) + GOOD[5:], "version 9"),
    "unknown type": (GOOD[:5] + bytes([77]) + GOOD[6:], "unknown type 77"),
    "oversized": (encode_header(FrameType.DATA, SID, 0, (1 << 20) + 1), "over the maximum of 1048576"),
    "wrong session": (frame(FrameType.DATA, 0, sid=bytes(16)), "another session"),
    "replayed": (GOOD + frame(FrameType.DATA, 0, b"again"), "replayed frame: sequence number 0, expected 1"),
    "out of order": (frame(FrameType.DATA, 5), "out-of-order"),
    "truncated payload": (GOOD[:-2], "truncated frame.*after 4 of 6 payload bytes"),
    "truncated header": (GOOD[:10], "truncated frame.*after 10 of 40 header bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frames_are_rejected_with_a_clear_error(case):
    data, match = BAD_FRAMES[case]
    r = FrameReader(Stream(data), SID, max_frame=1 << 20, source="'bank-b'")
    with pytest.raises(FrameError, match=match) as err:
        while r.read() is not None:
            pass
    assert "'bank-b'" in str(err.value)


def test_an_oversized_length_is_refused_before_anything_is_allocated():
    allocated = []
    r = FrameReader(Stream(encode_header(FrameType.DATA, SID, 0, 1 << 60)), SID, max_frame=1 << 30,
                    alloc=lambda n: allocated.append(n) or bytearray(n))
    with pytest.raises(FrameError, match="over the maximum"):
        r.read()
    assert allocated == []


def _socket_pair():
    """Two ends of a real TCP connection on the loopback interface."""
    with socket.create_server((HOST, 0)) as listener:
        a = socket.create_connection(listener.getsockname())
        b, _ = listener.accept()
    return a, b


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frames_on_a_real_socket_are_rejected(case):
    data, match = BAD_FRAMES[case]
    writer, reader = _socket_pair()
    reader.settimeout(10)  # a failure to detect the end must not hang the test

    def write():
        # dribble the bytes out in pieces, then close, as a peer that dies mid-frame would
        for i in range(0, len(data), 9):
            writer.sendall(data[i : i + 9])
        writer.close()

    t = threading.Thread(target=write)
    t.start()
    try:
        r = FrameReader(reader, SID, max_frame=1 << 20)
        with pytest.raises(FrameError, match=match):
            while r.read() is not None:
                pass
    finally:
        t.join()
        reader.close()


def test_frames_on_a_real_socket_round_trip():
    writer, reader = _socket_pair()
    payloads = [os.urandom(n) for n in (0, 1, 65_536, 3_000_000)]
    t = threading.Thread(target=lambda: (writer.sendall(b"".join(
        frame(FrameType.DATA, i, p) for i, p in enumerate(payloads))), writer.close()))
    t.start()
    r = FrameReader(reader, SID)
    assert [bytes(r.read().payload) for _ in payloads] == payloads
    assert r.read() is None
    t.join()
    reader.close()


def _read_all(data: bytes, chunk: int) -> None:
    """Read frames until the stream ends; only FrameError may escape."""
    r = FrameReader(Stream(data, chunk), SID, max_frame=1 << 16)
    for _ in range(len(data) // HEADER_SIZE + 1):  # every frame consumes at least a header
        if r.read() is None:
            return
    raise AssertionError("the reader returned more frames than the input can hold")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.integers(1, 64))
def test_fuzzed_bytes_only_ever_raise_frame_error(data, chunk):
    with contextlib.suppress(FrameError):
        _read_all(data, chunk)


VALID_STREAM = frame(FrameType.HELLO, 0, b'{"name": "a"}') + frame(FrameType.DATA, 1, bytes(100)) \
    + frame(FrameType.ABORT, 2, b"stop") + frame(FrameType.CLOSE, 3)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(VALID_STREAM) - 1), st.integers(0, 255)), max_size=4),
       st.integers(0, len(VALID_STREAM)), st.integers(1, 50))
def test_mutated_valid_streams_only_ever_raise_frame_error(flips, cut, chunk):
    # random bytes rarely get past the magic; flipping bytes of a valid stream reaches every check
    data = bytearray(VALID_STREAM)
    for at, value in flips:
        data[at] = value
    with contextlib.suppress(FrameError):
        _read_all(bytes(data[:cut]), chunk)
