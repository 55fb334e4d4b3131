"""PSI results equal their plaintext twins: the set intersection, its size, the join."""

import random

import numpy as np
import pytest

from tessera.errors import SessionError
from tessera.net.memory import memory_mesh
from tessera.psi import MemoryKeyLog, PsiSpec, run_psi

from .helpers import joined, ok

RNG = random.Random(20240909)


def _sets(n_parties, n, universe, dup=0):
    out = []
    for _ in range(n_parties):
        s = RNG.sample(range(universe), n)
        s += RNG.sample(s, dup) if dup else []
        RNG.shuffle(s)
        out.append([f"cust-{v:06d}" for v in s])
    return out


def _common(sets):
    return set(sets[0]).intersection(*sets[1:])


def _check_intersection(results, sets):
    """Every recipient's rows name the common ids, the same ids in the same order, first rows."""
    truth = _common(sets)
    order = None
    for q, r in results.items():
        ids = [sets[q][i] for i in r.rows]
        assert set(ids) == truth and len(ids) == len(truth) == r.size
        assert all(sets[q].index(x) == i for x, i in zip(ids, r.rows))  # first occurrence
        order = ids if order is None else order
        assert ids == order


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("n, universe", [(300, 500), (0, 10), (1, 1), (200, 100_000)])
def test_intersection_matches_plaintext(parties, n, universe):
    sets = _sets(parties, n, universe)
    _check_intersection(ok(sets, PsiSpec("intersection")), sets)


@pytest.mark.parametrize("parties", [2, 3])
def test_full_overlap_and_one_empty_party(parties):
    ids = [f"id{i}" for i in range(150)]
    sets = [RNG.sample(ids, len(ids)) for _ in range(parties)]
    _check_intersection(ok(sets, PsiSpec("intersection")), sets)
    sets[-1] = []
    res = ok(sets, PsiSpec("intersection"))
    assert all(r.size == 0 and len(r.rows) == 0 for r in res.values())


@pytest.mark.parametrize("parties", [2, 3])
def test_duplicates_collapse_to_first_row(parties):
    sets = _sets(parties, 120, 200, dup=30)
    res = ok(sets, PsiSpec("intersection"))
    _check_intersection(res, sets)
    assert all(r.duplicates == 30 and r.n_distinct == 120 and r.n_rows == 150 for r in res.values())
    assert all(set(r.peer_sizes.values()) == {120} for r in res.values())  # only distinct counts travel


def test_unicode_and_integer_identifiers_match_across_representations():
    a = ["Müller-Lüdenscheidt", "ÅSA", "李小龙", "１２３", 42, "  Straße ", "zoë", "only-a"]
    b = ["STRASSE", "åsa", 123, "müller-lüdenscheidt", "李小龙", "42", "Zoe\u0308", "only-b"]
    res = ok([a, b], PsiSpec("intersection"))
    assert res[0].size == 7
    pairs = {(str(a[i]), str(b[j])) for i, j in zip(res[0].rows, res[1].rows)}
    assert ("Müller-Lüdenscheidt", "müller-lüdenscheidt") in pairs and ("42", "42") in pairs
    assert ("１２３", "123") in pairs and ("  Straße ", "STRASSE") in pairs and ("ÅSA", "åsa") in pairs
    assert ok([["ÅSA"], ["asa"]], PsiSpec("size"))[0].size == 0  # accents are significant


def test_integer_ids_from_numpy():
    a, b = np.arange(0, 1000, 3), np.arange(0, 1000, 5)
    res = ok([a, b], PsiSpec("intersection"))
    assert sorted(a[res[0].rows].tolist()) == list(range(0, 1000, 15))
    assert (a[res[0].rows] == b[res[1].rows]).all()


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("seed", [1, 2])
def test_size_mode_gives_only_the_count(parties, seed):
    sets = _sets(parties, 250, 400)
    res = ok(sets, PsiSpec("size"))
    assert {r.size for r in res.values()} == {len(_common(sets))}
    assert all(r.rows is None and r.alignment is None for r in res.values())


@pytest.mark.parametrize("parties", [2, 3])
def test_only_recipients_get_outputs(parties):
    sets = _sets(parties, 100, 150)
    truth = len(_common(sets))
    for who in range(parties):
        for mode in ("size", "intersection"):
            res = ok(sets, PsiSpec(mode, recipients=(who,)))
            for q, r in res.items():
                assert (r.size == truth) if q == who else (r.size is None and r.rows is None), (mode, who, q)
            if mode == "intersection":
                assert set(sets[who][i] for i in res[who].rows) == _common(sets)


def test_two_of_three_recipients_are_aligned():
    sets = _sets(3, 200, 300)
    for recipients in [(0, 1), (1, 2), (0, 2)]:
        res = ok(sets, PsiSpec("intersection", recipients=recipients))
        _check_intersection({q: res[q] for q in recipients}, sets)


@pytest.mark.parametrize("parties", [2, 3])
@pytest.mark.parametrize("n, universe", [(300, 450), (0, 5), (80, 80)])
def test_aligned_mode_plans_the_join(parties, n, universe):
    sets = _sets(parties, n, universe, dup=5 if n > 5 else 0)
    res = ok(sets, PsiSpec("aligned"))
    columns = joined(res, sets)
    truth = _common(sets)
    assert all(c == columns[0] for c in columns) and set(columns[0]) == truth and len(columns[0]) == len(truth)
    al = [r.alignment for r in res.values()]
    assert all(r.size == len(truth) and r.rows is None for r in res.values())
    assert all(a.select.keys() == al[0].select.keys() for a in al)
    for a in al:  # public parts agree; each party holds only the permutations it applies
        assert all((a.select[q] == al[0].select[q]).all() for q in a.select)
        assert a.shuffler == al[0].shuffler and a.sizes == al[0].sizes
    for q, r in res.items():
        assert set(r.alignment.shuffles) == {p for p, s in r.alignment.shuffler.items() if s == q}
        assert sorted(r.alignment.input_rows.tolist()) == sorted({sets[q].index(x) for x in sets[q]})


def test_edwards25519_group_gives_the_same_intersection():
    sets = _sets(2, 100, 150)
    _check_intersection(ok(sets, PsiSpec("intersection", group="edwards25519")), sets)


@pytest.mark.parametrize("parties, mode, rounds", [(2, "size", 4), (2, "intersection", 4), (2, "aligned", 4),
                                                   (3, "size", 6), (3, "intersection", 7), (3, "aligned", 6)])
def test_messages_are_batched_rounds_constant(parties, mode, rounds):
    counts = []
    for n in (10, 400):
        sets = _sets(parties, n, 2 * n)
        res, _, mesh = _run_with_mesh(sets, PsiSpec(mode))
        counts.append([ch.stats.messages_sent[q] for ch in mesh for q in range(parties)])
        assert all(ch.stats.rounds == rounds for ch in mesh)
    assert counts[0] == counts[1]  # the number of messages does not grow with the set size


def _run_with_mesh(sets, spec):
    from .helpers import run_parties

    res, errors, mesh = run_parties(sets, spec)
    assert not errors
    return res, errors, mesh


def test_local_misuse_is_a_session_error():
    (ch,) = memory_mesh(["solo"])
    with pytest.raises(SessionError, match="2 or 3"):
        run_psi(ch, ["a"], PsiSpec("size"))
    a, b = memory_mesh(["a", "b"], timeout=2)
    with pytest.raises(SessionError, match="mode"):
        run_psi(a, ["x"], PsiSpec("union"))  # type: ignore[arg-type]
    with pytest.raises(SessionError, match="recipients"):
        run_psi(a, ["x"], PsiSpec("size", recipients=(5,)))
    with pytest.raises(SessionError, match="unknown PSI group"):
        run_psi(a, ["x"], PsiSpec("size", group="p256"))


def test_key_log_shared_by_a_node_across_jobs_does_not_flag_fresh_keys():
    logs = {0: {"key_log": MemoryKeyLog()}, 1: {"key_log": MemoryKeyLog()}}
    for _ in range(3):
        ok([["a", "b"], ["b", "c"]], PsiSpec("size"), kwargs=logs)
