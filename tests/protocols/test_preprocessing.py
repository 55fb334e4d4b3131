"""Both preprocessing providers (dealer, OT) satisfy every relation of protocols/correlations.py;
the OT provider's messages show nothing of the other parties' shares; a party that drops out
during OT preprocessing stops the others with an error naming it, before anything is opened."""

import threading

import numpy as np
import pytest
from scipy import stats

from tessera.errors import ProtocolAbort, TransportError
from tessera.net.memory import memory_mesh
from tessera.protocols.correlations import build
from tessera.protocols.otprep import OtProvider
from tessera.runtime.inprocess import run_party, run_threads
from tests.protocols.helpers import top_byte_hist

#: kind -> (component shapes, params); 10^5 samples where a sample is one OT-cheap relation
#: (AND triples: 1563 words of 64 bit triples; daBits), fewer where each costs 64 OTs per pair
#: (Gilboa products, the 64 bits of a mask: 4096; a matrix triple's 3 10^4 scalar products)
#: to keep the suite's time (every relation is exact, so any failure shows at once)
CASES = {
    "mul": ([(4096,), (4096,)], None),
    "mul-bcast-trunc": ([(32, 1), (1, 128)], {"f": 16}),
    "matmul": ([(10, 300), (300, 10)], None),
    "matmul-vec-trunc": ([(300,), (300, 7)], {"f": 20}),
    "trunc": ([(4096,)], {"f": 16}),
    "and": ([(1563,)], None),
    "edabit": ([(4096,)], None),
    "dabit": ([(100_000,)], None),
    "perm": ([(1000, 3)], {"owner": 1}),
}
ALPHA = 1e-6


def _kind(case):
    return case.split("-")[0]


def _combine(xor, shares):
    out = shares[0].copy()
    for s in shares[1:]:
        out = out ^ s if xor else out + s
    return out


def check_relation(kind, shapes, params, per_party):
    """Reconstruct every component from the parties' shares and check the derived ones."""
    corr = build(kind, shapes, params)
    values = []
    for i, comp in enumerate(corr.random):
        if comp.owner is not None:
            values.append(per_party[comp.owner][0][i])
        else:
            values.append(_combine(comp.xor, [p[0][i] for p in per_party]))
    want = corr.derive(values)
    for i, comp in enumerate(corr.derived):
        got = _combine(comp.xor, [p[1][i] for p in per_party])
        assert got.shape == np.asarray(want[i]).shape
        assert (got == want[i]).all(), (kind, i)
    return values


@pytest.mark.parametrize("protocol", ["semi2k", "semi2k+ot"])
@pytest.mark.parametrize("case", list(CASES))
def test_every_correlation_satisfies_its_relation(protocol, case):
    shapes, params = CASES[case]
    kind = _kind(case)

    def program(s):
        sh = s.protocol.provider.get(kind, shapes, params)
        return [None if r is None else r.copy() for r in sh.random], [d.copy() for d in sh.derived()]

    res = run_threads(program, 2, protocol=protocol)
    values = check_relation(kind, shapes, params, [res.results[f"P{i}"] for i in range(2)])
    for comp, v in zip(build(kind, shapes, params).random, values):  # the random parts look random
        if not comp.perm and v.size > 1000 and not (comp.xor and comp.nbits == 1):
            assert stats.chisquare(top_byte_hist(v.reshape(-1))).pvalue > ALPHA


@pytest.mark.parametrize("case", ["mul-bcast-trunc", "matmul-vec-trunc", "and", "perm"])
def test_three_parties_ot_relations(case):
    shapes, params = CASES[case]
    shapes = [tuple(min(d, 40) for d in s) for s in shapes]  # smaller: n - 1 sequential bit conversions
    kind = _kind(case)

    def program(s):
        sh = s.protocol.provider.get(kind, shapes, params)
        return list(sh.random), sh.derived()

    res = run_threads(program, 3, protocol="semi2k+ot")
    check_relation(kind, shapes, params, [res.results[f"P{i}"] for i in range(3)])


class ConstantPrg:
    """Stands in for a party's fresh PRG: every share it draws is the constant ``v``."""

    def __init__(self, v):
        self.v = np.uint64(v)

    def ring(self, shape):
        return np.full(shape, self.v, dtype=np.uint64)

    def bits(self, shape, nbits=64):
        return np.full(shape, self.v & np.uint64((1 << nbits) - 1), dtype=np.uint64)


def record_ot_view(kind, shapes, params, secret):
    """Party 1's received messages (and its derived shares) while party 0's shares are ``secret``."""
    mesh = memory_mesh(["P0", "P1"], timeout=60)
    view = []
    orig = mesh[1]._recv_raw

    def recording(peer):
        msg = orig(peer)
        if len(msg) >= 8 * 4096:
            view.append(np.frombuffer(bytes(msg), dtype=np.uint64).copy())
        return msg

    mesh[1]._recv_raw = recording
    derived = {}

    def party(i):
        prov = OtProvider(mesh[i], 2)
        prov.setup()
        if i == 0:
            prov._prg = ConstantPrg(secret)
        derived[i] = prov.get(kind, shapes, params).derived()

    threads = [threading.Thread(target=party, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [*view, *(d.reshape(-1) for d in derived[1] if d.size >= 4096)]


@pytest.mark.parametrize("kind,shapes,params", [("mul", [(4096,), (4096,)], None),
                                                ("and", [(4096,)], None),
                                                ("trunc", [(4096,)], {"f": 16})])
def test_a_partys_view_is_independent_of_the_others_shares(kind, shapes, params):
    view_a = record_ot_view(kind, shapes, params, 0)
    view_b = record_ot_view(kind, shapes, params, 0xDEADBEEF12345678)
    assert len(view_a) == len(view_b) >= 2
    for wa, wb in zip(view_a, view_b):
        ha, hb = top_byte_hist(wa), top_byte_hist(wb)
        assert stats.chisquare(ha).pvalue > ALPHA
        assert stats.chisquare(hb).pvalue > ALPHA
        assert stats.chi2_contingency(np.stack([ha, hb])).pvalue > ALPHA


def _dropping_run(drop, silent=False):
    """P0 and P1 under semi2k+ot; P1 drops during its first triple (``drop`` says how; ``silent``:
    its abort never reaches P0, as when its process is killed)."""
    mesh = memory_mesh(["P0", "P1"], timeout=1)
    if silent:
        mesh[1]._abort_raw = lambda reason: None
    outcome = {}

    def program(s):
        x = s.input(0, np.arange(50.0) if s.me == 0 else None, shape=(50,))
        y = x * x  # a Beaver triple: OT preprocessing happens here
        outcome[s.party] = s.reveal(y)
        return outcome[s.party]

    real_run = OtProvider.cross_products

    def flaky(self, x, y):
        if self.me == 1:
            drop(self)
        return real_run(self, x, y)

    errors = {}

    def party(i):
        try:
            run_party(program, "semi2k+ot", mesh[i], ["P0", "P1"], 16)
        except BaseException as e:
            errors[i] = e

    OtProvider.cross_products = flaky
    try:
        threads = [threading.Thread(target=party, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        OtProvider.cross_products = real_run
    return errors, outcome


def test_a_party_crashing_during_preprocessing_aborts_the_other_naming_it():
    def crash(self):
        raise RuntimeError("power cut")

    errors, outcome = _dropping_run(crash)
    assert isinstance(errors[0], ProtocolAbort) and errors[0].party == "P1"
    assert "'P1'" in str(errors[0]) and "power cut" in str(errors[0])
    assert outcome == {}  # nothing was opened


def test_a_party_vanishing_during_preprocessing_times_out_naming_it():
    class Vanished(BaseException):
        pass

    def vanish(self):
        raise Vanished  # stops without telling anyone (as a killed process would)

    mesh_errors, outcome = _dropping_run(vanish, silent=True)
    err = mesh_errors[0]
    assert isinstance(err, TransportError) and not isinstance(err, ProtocolAbort)
    assert "waiting for 'P1'" in str(err)
    assert outcome == {}
