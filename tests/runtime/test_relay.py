"""The WAN relay: bytes arrive unchanged and in order, every chunk waits its delay and the token
bucket caps throughput (both read off the relay's own record of what it forwarded, not off a
clock in the test), and a session through the relay computes exactly what it does without."""

import socket
import threading

import numpy as np
import pytest

from tessera.errors import SessionError
from tessera.runtime import run_cluster
from tessera.runtime.relay import LinkShape, Relay, parse_duration, parse_rate


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    """A server that sends back everything it receives, then closes."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(1 << 15):
                conn.sendall(data)
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


def test_the_relay_forwards_every_byte_in_order_and_delays_and_caps_each_chunk():
    rng = np.random.default_rng(3)
    payload = rng.integers(0, 256, 600_000, dtype=np.uint8).tobytes()
    shape = LinkShape(delay=0.002, bandwidth=20e6, burst=1 << 16)
    srv, t = _echo_server()
    with Relay(shape, record=True) as relay:
        port = relay.route(srv.getsockname())
        got = bytearray()
        with socket.create_connection(("127.0.0.1", port)) as c:
            def reader() -> None:
                while data := c.recv(1 << 16):
                    got.extend(data)

            r = threading.Thread(target=reader)
            r.start()
            pos = 0
            for size in rng.integers(1, 40_000, 100):  # writes of random sizes, interleaved with the echo
                c.sendall(payload[pos : pos + int(size)])
                pos += int(size)
            c.sendall(payload[pos:])
            c.shutdown(socket.SHUT_WR)
            r.join(30)
        t.join(30)
        assert bytes(got) == payload  # every byte, in order, after two trips through the relay
        assert relay.forwarded[port] == 2 * len(payload)
        ways = relay.departures(port)
    assert [sum(d.size for d in w) for w in ways] == [len(payload), len(payload)]
    for way in ways:
        assert all(d.size <= shape.burst for d in way)
        assert all(d.departed - d.arrived >= shape.delay for d in way)  # each chunk waited its delay
        assert [d.arrived for d in way] == sorted(d.arrived for d in way)  # FIFO
        # the token bucket: whatever left in [t_j, t_i] fits the burst plus the rate times the span
        start = [d.departed for d in way]
        sizes = np.cumsum([0] + [d.size for d in way])
        for j in range(len(way)):
            for i in range(j, len(way)):
                assert sizes[i + 1] - sizes[j] <= shape.burst + shape.bandwidth * (start[i] - start[j]) + 1e-6


def test_link_shapes_read_from_the_command_line():
    assert parse_duration("20ms") == pytest.approx(0.02) and parse_duration("1s") == 1.0
    assert parse_rate("1gbit") == 125e6 and parse_rate("10MB") == 10e6
    shape = LinkShape.of("20ms", "1gbit")
    assert shape.delay == pytest.approx(0.01) and shape.burst == 125_000
    with pytest.raises(SessionError, match="cannot read the bandwidth 'fast'"):
        parse_rate("fast")
    with pytest.raises(SessionError, match="cannot read the duration '20 parsecs'"):
        parse_duration("20 parsecs")


@pytest.mark.slow
def test_a_session_through_the_relay_computes_exactly_what_it_does_without():
    args = {"n": 2000}
    direct = run_cluster("tessera.runtime.diagnostics:selftest", 3, protocol="rep3", args=args)
    with Relay(LinkShape(delay=0.003, bandwidth=50e6)) as relay:
        relayed = run_cluster("tessera.runtime.diagnostics:selftest", 3, protocol="rep3", args=args,
                              relay=relay)
        carried = sum(relay.forwarded.values())
    assert carried > 3 * 2000 * 8  # the parties' traffic really went through the relay
    for party, result in direct.results.items():
        got = relayed.results[party]
        for key in ("sum", "less", "max"):  # exact in any session
            np.testing.assert_array_equal(got[key], result[key])
        # a product's last bit is the truncation's random rounding, fresh in every session (relayed or not)
        assert np.abs(np.asarray(got["product"]) - np.asarray(result["product"])).max() <= 2.0**-16
    assert relayed.comm["P0"]["rounds"] == direct.comm["P0"]["rounds"]
