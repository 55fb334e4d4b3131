"""The prime-order groups and the batched, multi-threaded engine."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from tessera.ot.groups import POINT_BYTES, BadPoints, Engine, get_group
from tessera.psi import ristretto255_available
from tessera.psi._match import random_permutation

GROUPS = [
    pytest.param("ristretto255", marks=pytest.mark.skipif(not ristretto255_available(), reason="no libsodium")),
    "edwards25519",
]


@pytest.fixture(params=GROUPS)
def engine(request):
    g = get_group(request.param)
    with ThreadPoolExecutor(2) as pool:
        yield Engine(g, pool, 2)


def test_exponents_commute_and_threads_agree_with_one_by_one(engine):
    g = engine.group
    a, b = g.random_scalar(), g.random_scalar()
    pts = engine.hash_to_group(b"prefix", [str(i).encode() for i in range(700)])
    ab = engine.mul(b, engine.mul(a, pts))
    ba = engine.mul(a, engine.mul(b, pts))
    assert ab == ba
    one = b"".join(g.mul(a, bytes(pts[i : i + POINT_BYTES])) for i in range(0, len(pts), POINT_BYTES))
    assert engine.mul(a, pts) == one
    assert engine.scalar_mults == 5 * 700  # five batches; Group.mul is not counted by the engine


def test_hash_depends_on_the_salt_prefix_and_is_deterministic(engine):
    h1 = engine.hash_to_group(b"salt-1", [b"alice", b"bob"])
    assert h1 == engine.hash_to_group(b"salt-1", [b"alice", b"bob"])
    h2 = engine.hash_to_group(b"salt-2", [b"alice", b"bob"])
    assert h1[:32] != h2[:32] and h1[:32] != h1[32:]


def test_scalars_are_fresh(engine):
    scalars = {engine.group.random_scalar() for _ in range(50)}
    assert len(scalars) == 50 and all(any(s) for s in scalars)


@pytest.mark.parametrize("bad", [bytes(32), b"\xff" * 32, (1).to_bytes(32, "little")])
def test_invalid_points_and_the_identity_are_rejected_with_their_index(engine, bad):
    pts = engine.hash_to_group(b"p", [b"x", b"y", b"z"])
    pts[32:64] = bad
    with pytest.raises(BadPoints) as e:
        engine.mul(engine.group.random_scalar(), pts)
    assert e.value.first == 1 and e.value.count == 1


def test_random_permutation_is_a_permutation():
    p = random_permutation(1000)
    assert sorted(p.tolist()) == list(range(1000))
    assert p.tolist() != list(range(1000))
    assert random_permutation(0).tolist() == [] and random_permutation(1).tolist() == [0]
