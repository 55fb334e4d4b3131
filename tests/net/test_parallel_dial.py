"""An endpoint dials all its peers at once: set-up pays the slowest handshake, not the sum.

The probe: the last endpoint reaches its two peers through gates, and the gate to the first
peer forwards nothing until the gate to the second has been dialled. An endpoint dialling its
peers one after the other waits at the first gate until the set-up deadline; one dialling them
concurrently passes both.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time

import numpy as np

from tessera.net.tls import connect_mesh
from tests.net.helpers import HOST, close_all, identities, run_all


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _dial_when_listening(target: int, within: float = 20.0) -> socket.socket | None:
    """The gate may be dialled before its target listens (the endpoints start together), so
    it retries a refused connection, as the endpoints themselves do."""
    deadline = time.monotonic() + within
    while True:
        try:
            return socket.create_connection((HOST, target))
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def _gate(target: int, opened: threading.Event, wait_for: threading.Event | None) -> int:
    """A forwarder to ``target`` that sets ``opened`` when dialled and forwards only once
    ``wait_for`` is set."""
    srv = socket.create_server((HOST, 0))

    def serve() -> None:
        inbound, _ = srv.accept()
        srv.close()
        opened.set()
        if wait_for is not None and not wait_for.wait(20):
            inbound.close()
            return
        outbound = _dial_when_listening(target)
        if outbound is None:
            inbound.close()
            return
        threading.Thread(target=_pump, args=(inbound, outbound), daemon=True).start()
        threading.Thread(target=_pump, args=(outbound, inbound), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return int(srv.getsockname()[1])


def test_the_last_endpoint_dials_both_peers_concurrently(tmp_path):
    ids, eps = identities(tmp_path, ["P0", "P1", "P2"])
    to_p1, to_p0 = threading.Event(), threading.Event()
    gated = [dataclasses.replace(eps[0], port=_gate(eps[0].port, to_p0, wait_for=to_p1)),
             dataclasses.replace(eps[1], port=_gate(eps[1].port, to_p1, wait_for=None)), eps[2]]
    sid = os.urandom(16)
    chans, errors = {}, {}

    def join(i: int) -> None:
        try:
            chans[i] = connect_mesh(i, gated if i == 2 else eps, ids[eps[i].name], sid, connect_timeout=8)
        except BaseException as e:
            errors[eps[i].name] = e

    run_all([lambda i=i: join(i) for i in range(3)])
    try:
        assert not errors, errors
        assert to_p0.is_set() and to_p1.is_set()
        chans[2].send(0, np.arange(3, dtype=np.uint64).data)
        assert bytes(chans[0].recv(2)) == np.arange(3, dtype=np.uint64).tobytes()
    finally:
        close_all(chans)
