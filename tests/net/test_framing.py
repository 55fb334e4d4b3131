import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.errors import FrameError
from tessera.net.framing import HEADER_SIZE, ConnectionClosed, FrameReader, FrameType, encode_header

SID = bytes(range(16))


class Stream:
    """A socket-like byte source with recv_into."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._buf = io.BytesIO(data)
        self._chunk = chunk

    def recv_into(self, view, nbytes=0):
        n = min(len(view), nbytes or len(view), self._chunk)
        data = self._buf.read(n)
        view[: len(data)] = data
        return len(data)


def frame(kind, seq, payload=b"", sid=SID):
    return encode_header(kind, sid, seq, len(payload)) + payload


def test_round_trip_of_several_frames_split_arbitrarily():
    data = frame(FrameType.HELLO, 0, b"hi") + frame(FrameType.DATA, 1, os.urandom(1000)) + frame(FrameType.ABORT, 2, b"why")
    r = FrameReader(Stream(data, chunk=13), SID)
    assert r.read()[0] is FrameType.HELLO
    kind, payload = r.read()
    assert kind is FrameType.DATA and len(payload) == 1000
    assert r.read() == (FrameType.ABORT, bytearray(b"why"))
    with pytest.raises(ConnectionClosed):
        r.read()


@pytest.mark.parametrize(
    "data,match",
    [
        (b"XXXX" + frame(FrameType.DATA, 0)[4:], "magic"),
        (frame(FrameType.DATA, 0)[:4] + bytes([9]) + frame(FrameType.DATA, 0)[5:], "version"),
        (frame(FrameType.DATA, 0)[:5] + bytes([77]) + frame(FrameType.DATA, 0)[6:], "unknown frame type"),
        (frame(FrameType.DATA, 0, sid=bytes(16)), "another session"),
        (frame(FrameType.DATA, 0, b"a") + frame(FrameType.DATA, 0, b"b"), "replayed"),
        (frame(FrameType.DATA, 5), "out of order"),
        (frame(FrameType.DATA, 0, b"abcdef")[:-2], "truncated"),
        (frame(FrameType.DATA, 0)[:10], "truncated"),
    ],
)
def test_bad_frames_are_rejected_with_a_clear_error(data, match):
    r = FrameReader(Stream(data), SID)
    with pytest.raises(FrameError, match=match):
        r.read()
        r.read()


def test_oversized_frame_is_rejected_before_allocation():
    header = encode_header(FrameType.DATA, SID, 0, 1 << 60)
    with pytest.raises(FrameError, match="exceeds the maximum"):
        FrameReader(Stream(header), SID, max_frame=1 << 20).read()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.integers(1, 64))
def test_fuzzed_input_only_ever_raises_frame_errors(data, chunk):
    r = FrameReader(Stream(data, chunk), SID, max_frame=1 << 16)
    for _ in range(10):
        try:
            r.read()
        except (FrameError, ConnectionClosed):
            return


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=HEADER_SIZE, max_size=HEADER_SIZE), st.binary(max_size=64))
def test_fuzzed_headers_never_crash(header, rest):
    r = FrameReader(Stream(header + rest), SID, max_frame=1 << 16)
    try:
        r.read()
    except (FrameError, ConnectionClosed):
        pass
