"""OPRF PSI (KKRT over OT extension): results equal their plaintext twins; building blocks hold.

The parts: the bit transpose, base OTs, the OT-extension correlation, cuckoo hashing; then the
protocol over memory channels and over mutual TLS; then failures, which stop both parties with
no partial result.
"""

import itertools
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tessera.errors import ProtocolAbort, SessionError, TransportError
from tessera.net.memory import memory_mesh
from tessera.ot.aes import FixedKeyAes, transpose
from tessera.ot.base import BaseOtReceiver, BaseOtSender
from tessera.ot.groups import BadPoints, Engine, get_group
from tessera.ot.kkrt import WIDTH, choice_mask, extend_receiver, extend_sender, receiver_rows, split
from tessera.psi import PsiSpec, _cuckoo, _oprf, run_psi
from tessera.psi._wire import Kind, pack, unpack

from .helpers import Wrapped, ok, run_parties

RNG = random.Random(20250101)
OPRF = dict(protocol="oprf")


def _sets(sizes, universe, dup=0):
    out = []
    for n in sizes:
        s = RNG.sample(range(universe), n)
        s += RNG.sample(s, dup) if dup else []
        RNG.shuffle(s)
        out.append([f"cust-{v:06d}" for v in s])
    return out


def _check(results, sets, recipients=(0, 1)):
    """Recipients' rows name exactly the common ids, in one common order, each its first row."""
    truth = set(sets[0]) & set(sets[1])
    order = None
    for q in recipients:
        r = results[q]
        ids = [sets[q][i] for i in r.rows]
        assert r.size == len(truth) == len(ids) and set(ids) == truth
        assert all(sets[q].index(x) == i for x, i in zip(ids, r.rows))
        order = ids if order is None else order
        assert ids == order


# --- building blocks -------------------------------------------------------------------------------


def _ref_transpose(a):
    bits = np.unpackbits(a, axis=1, bitorder="little")
    return np.packbits(bits.T.copy(), axis=1, bitorder="little")


@pytest.mark.parametrize("rows, cols", [(8, 1), (64, 3), (8000, 64), (512, 1000), (24, 5), (0, 4)])
def test_transpose_matches_unpackbits(rows, cols):
    a = np.frombuffer(os.urandom(rows * cols), dtype=np.uint8).reshape(rows, cols)
    assert (transpose(a) == _ref_transpose(a)).all()
    assert (transpose(a, chunk_bytes=256) == _ref_transpose(a)).all()
    if rows:
        assert (transpose(transpose(a)) == a).all()


def _engine(pool):
    return Engine(get_group("ristretto255"), pool, 1)


@pytest.mark.parametrize("group", ["ristretto255", "edwards25519"])
def test_base_ots_deliver_the_chosen_seed_only(group):
    with ThreadPoolExecutor(1) as pool:
        eng = Engine(get_group(group), pool, 1)
        choices = np.frombuffer(os.urandom(16), dtype=np.uint8) & 1
        sender = BaseOtSender(eng, b"salt", count=16)
        receiver = BaseOtReceiver(eng, b"salt", choices)
        k0, k1 = sender.keys(receiver.message(sender.message))
        got = receiver.keys()
    for i, c in enumerate(choices):
        assert got[i] == (k1[i] if c else k0[i]) and k0[i] != k1[i] and len(got[i]) == 16
    assert len(set(k0) | set(k1)) == 32


def test_base_ots_refuse_invalid_points():
    with ThreadPoolExecutor(1) as pool:
        eng = _engine(pool)
        receiver = BaseOtReceiver(eng, b"salt", np.zeros(4, dtype=np.uint8))
        with pytest.raises(BadPoints):
            receiver.message(bytes(32))  # the identity
        sender = BaseOtSender(eng, b"salt", count=4)
        good = BaseOtReceiver(eng, b"salt", np.ones(4, dtype=np.uint8)).message(sender.message)
        with pytest.raises(BadPoints) as e:
            sender.keys(good[:64] + b"\xff" * 32 + good[96:])
        assert e.value.first == 2


@pytest.mark.parametrize("m, parts", [(128, 1), (1024, 2), (3 * (1 << 16) + 384, 1), (3 * (1 << 16) + 384, 2)])
def test_ot_extension_correlation_holds(m, parts):
    k0 = [os.urandom(16) for _ in range(WIDTH)]
    k1 = [os.urandom(16) for _ in range(WIDTH)]
    s = np.frombuffer(os.urandom(WIDTH // 8), dtype=np.uint8)
    bits = np.unpackbits(s, bitorder="little")
    code = np.frombuffer(os.urandom(64 * m), dtype=np.uint8).reshape(m, 64)
    with ThreadPoolExecutor(2) as pool:
        u = extend_receiver(k0, k1, code, mapper=lambda f, xs: list(pool.map(f, xs)), parts=parts)
    assert (u == extend_receiver(k0, k1, code)).all()  # threads change nothing
    t = np.concatenate([rows for lo, hi in split(m, parts) for _, rows in receiver_rows(k0, lo, hi)])
    q = extend_sender([k1[i] if bits[i] else k0[i] for i in range(WIDTH)], bits, u, parts=parts)
    assert u.shape == (WIDTH, m // 8) and t.shape == q.shape == (m, 64)
    assert (choice_mask(bits) == s).all()
    assert (q == t ^ (code & s)).all()  # q_j = t_j XOR (C_j AND s)
    assert not (q == t).all(axis=1).any()  # and not trivially


def test_row_hash_depends_on_every_block_and_the_tweak():
    aes = FixedKeyAes(os.urandom(16))
    rows = np.frombuffer(os.urandom(64 * 5), dtype=np.uint64).reshape(5, 8)
    tw = np.arange(5, dtype=np.uint64)
    h = aes.row_hash(rows, tw)
    assert h.shape == (5, 2) and len({bytes(x) for x in h}) == 5
    assert (aes.row_hash(rows.copy(), tw) == h).all()
    for col in range(8):
        flipped = rows.copy()
        flipped[:, col] ^= np.uint64(1)
        assert not (aes.row_hash(flipped, tw) == h).all(axis=1).any()
    assert not (aes.row_hash(rows, tw + np.uint64(1)) == h).all(axis=1).any()


@pytest.mark.parametrize("n", [0, 1, 7, 300, 20_000])
def test_cuckoo_places_every_item_in_one_of_its_bins(n):
    aes = FixedKeyAes(os.urandom(16))
    dig = np.frombuffer(os.urandom(16 * n), dtype=np.uint64).reshape(n, 2)
    m = _cuckoo.bins(n)
    assert m % 128 == 0 and m >= 1.27 * n
    pos = _cuckoo.positions(aes, dig, m)
    assert pos.shape == (n, 3) and (pos >= 0).all() and (pos < m).all()
    table, which = _cuckoo.insert(pos, m)
    placed = np.flatnonzero(table >= 0)
    assert sorted(table[placed].tolist()) == list(range(n))  # every item exactly once
    assert (pos[table[placed], which[table[placed]]] == placed).all()  # in its chosen candidate bin


def test_cuckoo_reports_an_impossible_table():
    pos = np.array([[0, 1, 2]] * 4)  # four items, three bins between them
    assert _cuckoo.insert(pos, 8, max_rounds=200) is None


def test_output_length_bounds_false_matches():
    assert _oprf.out_bytes(2**20, 2**20) == 11  # 40 + log2(3 * 2^40) = 81.6 bits
    assert _oprf.out_bytes(0, 0) == 8 and _oprf.out_bytes(2**40, 2**40) == 16
    for a, b in [(1, 1), (1000, 5), (2**16, 2**18)]:
        assert 8 * _oprf.out_bytes(a, b) >= 40 + np.log2(3 * a * b)


# --- the protocol ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sizes, universe",
    [((300, 300), 500), ((0, 10), 10), ((10, 0), 10), ((0, 0), 1), ((1, 1), 1), ((200, 200), 100_000),
     ((2000, 37), 2500), ((37, 2000), 2500), ((3000, 3000), 4000)],
)
def test_intersection_matches_plaintext(sizes, universe):
    sets = _sets(sizes, universe)
    res = ok(sets, PsiSpec("intersection", **OPRF))
    _check(res, sets)
    assert all(r.scalar_mults < 2000 for r in res.values())  # base OTs only


def test_disjoint_and_full_overlap():
    a = [f"a{i}" for i in range(500)]
    res = ok([a, [f"b{i}" for i in range(400)]], PsiSpec("intersection", **OPRF))
    assert res[0].size == res[1].size == 0 and len(res[0].rows) == len(res[1].rows) == 0
    sets = [a, RNG.sample(a, len(a))]
    _check(ok(sets, PsiSpec("intersection", **OPRF)), sets)


def test_duplicates_collapse_to_first_row():
    sets = _sets((150, 120), 200, dup=30)
    res = ok(sets, PsiSpec("intersection", **OPRF))
    _check(res, sets)
    assert res[0].duplicates == res[1].duplicates == 30
    assert res[0].peer_sizes == {1: 120} and res[1].peer_sizes == {0: 150}  # distinct counts only


def test_unicode_and_integer_identifiers_match_across_representations():
    a = ["Müller-Lüdenscheidt", "ÅSA", "李小龙", "１２３", 42, "  Straße ", "zoë", "only-a", np.int64(-7)]
    b = ["STRASSE", "åsa", 123, "müller-lüdenscheidt", "李小龙", "42", "Zoe\u0308", "only-b", "-7"]
    res = ok([a, b], PsiSpec("intersection", **OPRF))
    assert res[0].size == 8
    pairs = {(str(a[i]), str(b[j])) for i, j in zip(res[0].rows, res[1].rows)}
    assert ("１２３", "123") in pairs and ("  Straße ", "STRASSE") in pairs and ("42", "42") in pairs
    assert ("-7", "-7") in pairs
    assert ok([["ÅSA"], ["asa"]], PsiSpec("size", **OPRF))[0].size == 0  # accents are significant


def test_integer_ids_from_numpy():
    a, b = np.arange(0, 3000, 3), np.arange(0, 3000, 5)
    res = ok([a, b], PsiSpec("intersection", **OPRF))
    assert sorted(a[res[0].rows].tolist()) == list(range(0, 3000, 15))
    assert (a[res[0].rows] == b[res[1].rows]).all()


@pytest.mark.parametrize("recipients", [None, (0,), (1,), (1, 0)])
@pytest.mark.parametrize("mode", ["size", "intersection"])
def test_only_recipients_get_outputs(mode, recipients):
    sets = _sets((250, 180), 400)
    truth = set(sets[0]) & set(sets[1])
    res = ok(sets, PsiSpec(mode, recipients=recipients, **OPRF))
    for q in (0, 1):
        r = res[q]
        if recipients is None or q in recipients:
            assert r.size == len(truth)
            if mode == "intersection":
                assert {sets[q][i] for i in r.rows} == truth
            else:
                assert r.rows is None
        else:
            assert r.size is None and r.rows is None
    if mode == "intersection" and (recipients is None or len(recipients) == 2):
        _check(res, sets)


def test_messages_and_rounds_do_not_grow_with_the_sets():
    counts = []
    for n in (10, 2000):
        res, errors, mesh = run_parties(_sets((n, n), 2 * n), PsiSpec("intersection", **OPRF))
        assert not errors
        counts.append([ch.stats.messages_sent for ch in mesh])
        assert [ch.stats.rounds for ch in mesh] == [4, 4]
    assert counts[0] == counts[1]


def test_cuckoo_retry_uses_the_next_hash_functions(monkeypatch):
    calls = []
    original = _cuckoo.insert

    def flaky(pos, m, max_rounds=_cuckoo.MAX_ROUNDS):
        calls.append(m)
        return None if len(calls) == 1 else original(pos, m, max_rounds)

    monkeypatch.setattr(_oprf, "insert", flaky)
    sets = _sets((400, 300), 600)
    _check(ok(sets, PsiSpec("intersection", **OPRF)), sets)
    assert len(calls) == 2


def test_oprf_over_tls(tmp_path):
    from tests.net.helpers import close_all, identities, mesh_in_threads

    sets = _sets((3000, 2500), 4000)
    ids, eps = identities(tmp_path / "keys", ["bank-0", "bank-1"])
    chans, errors = mesh_in_threads(ids, eps, timeout=20, connect_timeout=10)
    assert not errors
    results, failures = {}, {}

    def party(i):
        try:
            results[i] = run_psi(chans[i], sets[i], PsiSpec("intersection", job_id="tls-job", **OPRF))
        except BaseException as e:
            failures[i] = e

    threads = [threading.Thread(target=party, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_all(chans)
    assert not failures
    _check(results, sets)


# --- failures ---------------------------------------------------------------------------------------

SETS = _sets((80, 70), 120)


def _fails(sets, spec, **kw):
    res, errors, _ = run_parties(sets, spec, **kw)
    assert res == {}, "no party may return a result"
    return errors


def _tamper(kind, change, part=0):
    def on_send(peer, data):
        if data[4] != kind:
            return data
        parts = [bytes(p) for p in unpack(data, kind, data[5])]
        parts[part] = change(parts[part])
        return pack(kind, *parts)

    return on_send


class Crash(Exception):
    pass


def _crash_on(kind):
    def on_send(peer, data):
        if data[4] == kind:
            raise Crash("power lost")
        return data

    return on_send


@pytest.mark.parametrize("who, kind", [(0, Kind.OT_BASE), (1, Kind.OT_BASE), (0, Kind.OT_EXT), (1, Kind.OPRF),
                                       (0, Kind.RESULT)])
def test_a_party_failing_mid_psi_aborts_the_other(who, kind):
    start = time.perf_counter()
    errors = _fails(SETS, PsiSpec("intersection", **OPRF), wrap={who: lambda ch: Wrapped(ch, _crash_on(kind))})
    other = 1 - who
    assert isinstance(errors[who], Crash)
    assert isinstance(errors[other], ProtocolAbort) and "power lost" in errors[other].reason
    assert errors[other].party == f"bank-{'ab'[who]}"
    assert time.perf_counter() - start < 5  # promptly, not by timeout


def test_a_party_vanishing_without_abort_times_out_the_other():
    wrap = {1: lambda ch: Wrapped(ch, _crash_on(Kind.OPRF), silent=True)}
    errors = _fails(SETS, PsiSpec("size", **OPRF), wrap=wrap, timeout=1.0)
    assert isinstance(errors[0], TransportError) and "timed out" in str(errors[0])


@pytest.mark.parametrize(
    "who, kind, part, change, message",
    [
        (0, Kind.OT_EXT, 1, lambda u: u[:-1], "bytes of OT extension"),
        (0, Kind.OT_EXT, 0, lambda a: b"\x07", "invalid cuckoo attempt"),
        (1, Kind.OPRF, 0, lambda p: p[::-1], "not sorted"),
        (1, Kind.OPRF, 0, lambda p: p[:-8], "OPRF values of the wrong length"),
        (1, Kind.OT_BASE, 0, lambda b: b[:32] + b"\xff" * 32 + b[64:], "1 invalid base-OT point(s), the first at index 1"),
        (0, Kind.OT_BASE, 0, lambda a: bytes(32), "base-OT point that is not a valid ristretto255 element"),
    ],
)
def test_malformed_messages_are_blamed_on_their_sender(who, kind, part, change, message):
    wrap = {who: lambda ch: Wrapped(ch, _tamper(kind, change, part))}
    errors = _fails(SETS, PsiSpec("intersection", **OPRF), wrap=wrap)
    checker = 1 - who
    assert isinstance(errors[checker], ProtocolAbort) and message in errors[checker].reason
    assert f"'bank-{'ab'[who]}'" in errors[checker].reason
    assert isinstance(errors[who], ProtocolAbort) and errors[who].party == f"bank-{'ab'[checker]}"


def test_impossible_results_from_the_receiver_are_refused():
    # the receiver's result is the last message: it has finished when the sender checks it
    def twice(data):
        return data[:4] * 2 if len(data) >= 4 else data

    wrap = {0: lambda ch: Wrapped(ch, _tamper(Kind.RESULT, twice))}
    res, errors, _ = run_parties(SETS, PsiSpec("intersection", **OPRF), wrap=wrap)
    assert 1 not in res and "'bank-a' sent repeated positions" in errors[1].reason
    big = lambda d: (10**9).to_bytes(8, "little")  # noqa: E731
    wrap = {0: lambda ch: Wrapped(ch, _tamper(Kind.RESULT, big))}
    res, errors, _ = run_parties(SETS, PsiSpec("size", **OPRF), wrap=wrap)
    assert 1 not in res and "'bank-a' sent an impossible intersection size" in errors[1].reason


def test_cuckoo_failing_every_attempt_aborts_both(monkeypatch):
    monkeypatch.setattr(_oprf, "insert", lambda pos, m: None)
    errors = _fails(SETS, PsiSpec("intersection", **OPRF))
    assert isinstance(errors[0], ProtocolAbort) and "cuckoo hashing" in errors[0].reason
    assert isinstance(errors[1], ProtocolAbort) and errors[1].party == "bank-a"


def test_parties_must_agree_on_the_protocol():
    errors = _fails(SETS, [PsiSpec("size", **OPRF), PsiSpec("size")])
    assert any("runs a different PSI job: protocol" in str(e) for e in errors.values())


def test_unsupported_uses_are_session_errors():
    a, b = memory_mesh(["a", "b"], timeout=2)
    with pytest.raises(SessionError, match="'aligned' runs only on the ECDH protocol"):
        run_psi(a, ["x"], PsiSpec("aligned", **OPRF))
    with pytest.raises(SessionError, match="unknown PSI protocol"):
        run_psi(a, ["x"], PsiSpec("size", protocol="kkrt"))  # type: ignore[arg-type]
    chans = memory_mesh(["a", "b", "c"], timeout=2)
    with pytest.raises(SessionError, match="two parties"):
        run_psi(chans[0], ["x"], PsiSpec("size", **OPRF))


def test_sorted_order_sorts_by_value_alone():
    for n in (0, 1, 2, 1000):
        prefix = np.frombuffer(os.urandom(8 * n), dtype=np.uint64).copy()
        prefix[: n // 2] &= np.uint64(0xFFFF)  # many ties above the packed index bits
        tail = np.frombuffer(os.urandom(3 * n), dtype=np.uint8).reshape(n, 3)
        order = _oprf.sorted_order(prefix, tail)
        keys = [(int(prefix[i]), bytes(tail[i])) for i in order]
        assert keys == sorted(keys) and sorted(order.tolist()) == list(range(n))


@pytest.mark.parametrize("m, parts", [(128, 1), (128, 2), (1 << 16, 2), (5 * (1 << 16) + 128, 2), (5 * (1 << 16), 3)])
def test_split_covers_the_bins_at_chunk_bounds(m, parts):
    ranges = split(m, parts)
    assert ranges[0][0] == 0 and ranges[-1][1] == m and 1 <= len(ranges) <= parts
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(lo % (1 << 16) == 0 for lo, _ in ranges)


def test_edwards25519_base_ots_give_the_same_intersection():
    sets = _sets((300, 250), 400)
    _check(ok(sets, PsiSpec("intersection", group="edwards25519", **OPRF)), sets)


def test_large_matrices_travel_in_several_messages(monkeypatch):
    monkeypatch.setattr(_oprf, "MAX_MESSAGE", 1000)  # U: 20 columns a message; values: 125 a message
    sets = _sets((300, 400), 500)
    res, errors, mesh = run_parties(sets, PsiSpec("intersection", **OPRF))
    assert not errors
    _check(res, sets)
    assert mesh[0].stats.messages_sent[1] > 20 and mesh[1].stats.messages_sent[0] > 9
