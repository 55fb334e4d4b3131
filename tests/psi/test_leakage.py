"""What a party receives cannot be tested against a guessed identifier with its own key.

For every identifier ``x`` any party holds (and some it does not), a party can compute ``H(x)``
and ``k*H(x)`` with its own key ``k``. None of these may occur anywhere in the bytes it
received. As a control, the encodings the protocol *does* send (the peer's ``k'*H(y)``) are
found by the same search, so the search would see a testable encoding if there were one.
"""

import random

import pytest

from tessera.ot.groups import Engine, get_group
from tessera.psi import PsiKey, PsiSpec
from tessera.psi._ids import Normalisation, prepare_ids
from tessera.psi._job import Job

from .helpers import Wrapped, run_parties

RNG = random.Random(7)


@pytest.fixture
def prefixes(monkeypatch):
    """The salted hash prefix of each party's job, captured after the hello."""
    seen: dict[str, bytes] = {}
    original = Job.hello

    def hello(self, key_log, nonce):
        original(self, key_log, nonce)
        seen[self.channel.name] = self.prefix

    monkeypatch.setattr(Job, "hello", hello)
    return seen


def _encodings(prefix, scalar, ids):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        eng = Engine(get_group("ristretto255"), pool, 1)
        keys = prepare_ids(ids, Normalisation()).keys
        h = eng.hash_to_group(prefix, keys)
        return [bytes(h[i : i + 32]) for i in range(0, len(h), 32)], eng, keys


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("mode", ["size", "intersection", "aligned"])
def test_no_received_element_is_testable_with_the_own_key(prefixes, parties, mode):
    sets = [[f"acct-{v}" for v in RNG.sample(range(120), 60)] for _ in range(parties)]
    universe = sorted(set().union(*sets)) + [f"guess-{i}" for i in range(20)]
    keys = [PsiKey.fresh() for _ in range(parties)]
    scalars = [k._scalar for k in keys]
    wrap = {i: Wrapped for i in range(parties)}
    kwargs = {i: {"key": keys[i]} for i in range(parties)}
    _, errors, mesh = run_parties(sets, PsiSpec(mode), wrap=wrap, kwargs=kwargs)
    assert not errors
    common = set(sets[0]).intersection(*sets[1:])
    assert 0 < len(common) < 60
    for i, ch in enumerate(mesh):
        view = b"".join(ch.received)
        hashed, eng, _ = _encodings(prefixes[ch.name], scalars[i], universe)
        own = [eng.group.mul(scalars[i], h) for h in hashed]
        found = [x for x, h, e in zip(universe, hashed, own) if h in view or e in view]
        assert found == [], f"{ch.name} can test {len(found)} guessed identifiers"
    # control: endpoint 0 receives the last party's list under that party's key (2 parties: the
    # other list; 3 parties: C's list, sent round the ring), and the search finds all of it
    last = parties - 1
    hashed, eng, _ = _encodings(prefixes[mesh[0].name], scalars[last], sets[last])
    view0 = b"".join(mesh[0].received)
    assert all(eng.group.mul(scalars[last], h) in view0 for h in hashed)
