"""Correlated and random OT between every pair (tessera.ot.cot) satisfy their relations."""

import threading

import numpy as np
import pytest

from tessera.errors import SessionError
from tessera.net.memory import memory_mesh
from tessera.ot import Cot, OtMesh
from tessera.ot.cot import POOL
from tessera.ot.iknp import CrHash

M = 5_000  # not a multiple of 64: the last extension block is padded


def run_mesh(n, program):
    mesh = memory_mesh([f"P{i}" for i in range(n)], timeout=30)
    out, errors = {}, []

    def party(i):
        try:
            ot = OtMesh(mesh[i], n)
            ot.setup()
            out[i] = program(i, ot)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
            mesh[i].abort(repr(e))

    threads = [threading.Thread(target=party, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out, mesh


def test_ring_bits_and_random_ot_satisfy_their_relations():
    rng = np.random.default_rng(5)
    delta = rng.integers(0, 2**64, size=(M, 3), dtype=np.uint64)
    bdelta = rng.integers(0, 2, M).astype(np.uint8)
    c = rng.integers(0, 2, M).astype(np.uint8)

    def program(i, ot):
        if i == 0:
            return ot.run([Cot(1, "send", "ring", delta), Cot(1, "send", "bits", bdelta),
                           Cot(1, "send", "random", m=M, w=2), Cot(1, "recv", "ring", c, w=1)])
        return ot.run([Cot(0, "recv", "ring", c, w=3), Cot(0, "recv", "bits", c),
                       Cot(0, "recv", "random", c, w=2), Cot(0, "send", "ring", delta[:, :1])])

    out, mesh = run_mesh(2, program)
    (a, ab, h, a2), (b, bb, hc, b2) = out[0], out[1]
    cd = c.astype(np.uint64)[:, None]
    assert ((a + b) == cd * delta).all()
    assert ((ab ^ bb) == (c & bdelta)).all()
    assert ((a2 + b2) == cd * delta[:, :1]).all()
    rows = np.arange(M)
    assert (hc == h[rows, c]).all() and (hc != h[rows, 1 - c]).all(axis=1).all()
    # traffic from P1: base OTs (A, the B_i), one pool of random OTs extended ahead (16 bytes
    # each) that serves its three requests as receiver, a bit per chosen OT, one ring correction
    sent = mesh[1].stats.bytes_sent[0]
    assert 3 * M <= POOL
    assert sent == 32 * (1 + 128) + 16 * POOL + 3 * (M // 8) + 8 * M


def test_three_parties_every_ordered_pair_at_once():
    rng = np.random.default_rng(6)
    deltas = [rng.integers(0, 2**64, size=(M, 1), dtype=np.uint64) for _ in range(3)]
    choices = [rng.integers(0, 2, M).astype(np.uint8) for _ in range(3)]

    def program(i, ot):
        reqs = []
        for j in range(3):
            if j != i:
                reqs += [Cot(j, "send", "ring", deltas[i]), Cot(j, "recv", "ring", choices[i], w=1)]
        return dict(zip([(i, j, r) for j in range(3) if j != i for r in ("s", "r")], ot.run(reqs)))

    out, _ = run_mesh(3, program)
    for i in range(3):
        for j in range(3):
            if i != j:  # i sent with its delta to j, which chose with its bits
                got = out[i][(i, j, "s")] + out[j][(j, i, "r")]
                assert (got == choices[j].astype(np.uint64)[:, None] * deltas[i]).all()


def test_the_hash_is_tweaked_by_index_and_block():
    h = CrHash()
    rows = np.zeros((4, 16), dtype=np.uint8)
    w = h.words(rows, 0, 4)
    assert len({int(x) for x in w.reshape(-1)}) == 16  # same input, different tweaks
    assert (h.words(rows, 0, 4) == w).all() and not (h.words(rows, 4, 4) == w).any()


def test_a_bad_base_ot_point_names_the_peer():
    mesh = memory_mesh(["P0", "P1"], timeout=10)
    errors = {}

    def honest():
        try:
            OtMesh(mesh[0], 2).setup()
        except Exception as e:
            errors[0] = e

    t = threading.Thread(target=honest)
    t.start()
    mesh[1].recv(0)
    mesh[1].send(0, b"\x00" * 32)  # the identity is not a valid point
    t.join()
    assert isinstance(errors[0], SessionError)
    assert "'P1'" in str(errors[0]) and "base-OT" in str(errors[0])


def test_run_before_setup_is_refused():
    mesh = memory_mesh(["P0", "P1"])
    with pytest.raises(SessionError, match="setup"):
        OtMesh(mesh[0], 2).run([Cot(1, "send", "ring", np.zeros((1, 1), np.uint64))])


def test_importing_the_protocols_does_not_load_libsodium():
    import subprocess
    import sys

    code = "import sys, tessera.protocols; print('nacl' in sys.modules, 'tessera.ot.groups' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
