"""Wrong or reused keys, invalid points, disagreeing parties and dropped parties stop the job.

In every case each party raises (the checking party names the peer at fault, the others see
its abort) and no party returns a result.
"""

import json
import time

import pytest

from tessera.errors import ProtocolAbort, SessionError, TransportError
from tessera.ot.groups import get_group
from tessera.psi import MemoryKeyLog, Normalisation, PsiKey, PsiSpec
from tessera.psi._keys import PsiKey as _PsiKey
from tessera.psi._wire import Kind, pack, unpack

from .helpers import Wrapped, run_parties

SETS2 = [[f"c{i}" for i in range(0, 60)], [f"c{i}" for i in range(30, 90)]]
SETS3 = [*SETS2, [f"c{i}" for i in range(20, 80)]]


def _tamper(kind: Kind, change):
    """An ``on_send`` that rewrites the first part of every message of ``kind``."""

    def on_send(peer, data):
        if data[4] != kind:
            return data
        parts = [bytes(p) for p in unpack(data, kind, data[5])]
        parts[0] = change(parts[0])
        return pack(kind, *parts)

    return on_send


def _rekey(points: bytes) -> bytes:
    """Apply an extra, unannounced key: what a party using a wrong key would send."""
    g = get_group("ristretto255")
    s = g.random_scalar()
    return b"".join(g.mul(s, points[i : i + 32]) for i in range(0, len(points), 32))


def _fails(sets, spec, **kw):
    res, errors, _ = run_parties(sets, spec, **kw)
    assert res == {}, "no party may return a result"
    return errors


@pytest.mark.parametrize("mode", ["size", "intersection", "aligned"])
def test_a_reply_under_a_wrong_key_is_caught_by_the_probes(mode):
    on_send = _tamper(Kind.REPLY, _rekey)
    errors = _fails(SETS2, PsiSpec(mode), wrap={1: lambda ch: Wrapped(ch, on_send)})
    e0, e1 = errors[0], errors[1]
    assert isinstance(e0, ProtocolAbort) and "'bank-b' did not use the PSI key it announced" in e0.reason
    assert isinstance(e1, ProtocolAbort) and e1.party == "bank-a"


def test_three_parties_a_wrong_key_in_the_middle_step_is_caught():
    on_send = _tamper(Kind.HOP, _rekey)  # bank-b's step on bank-a's list, checked by bank-c
    errors = _fails(SETS3, PsiSpec("intersection"), wrap={1: lambda ch: Wrapped(ch, on_send)})
    assert "'bank-b' did not use the PSI key it announced on 'bank-a''s list" in errors[2].reason
    assert all(isinstance(e, ProtocolAbort) for e in errors.values()) and len(errors) == 3


def test_a_reused_key_object_is_refused_locally():
    key = PsiKey.fresh()
    key.take()
    errors = _fails(SETS2, PsiSpec("size"), kwargs={1: {"key": key}})
    assert isinstance(errors[1], SessionError) and "already used" in str(errors[1])
    assert isinstance(errors[0], ProtocolAbort) and errors[0].party == "bank-b"
    assert repr(key) == "PsiKey(group='ristretto255', used=True)"  # the scalar never prints


def test_a_peer_reusing_a_key_from_an_earlier_job_is_detected():
    logs = [MemoryKeyLog(), MemoryKeyLog()]
    key = PsiKey.fresh()
    kwargs = {0: {"key_log": logs[0]}, 1: {"key_log": logs[1], "key": key}}
    res, errors, _ = run_parties(SETS2, PsiSpec("size", job_id="job-1"), kwargs=kwargs)
    assert not errors
    again = _PsiKey(key.group, key._scalar)  # the same scalar under a new object
    kwargs[1] = {"key": again}
    errors = _fails(SETS2, PsiSpec("size", job_id="job-2"), kwargs=kwargs)
    assert "'bank-b' announced a PSI public key already used in an earlier job" in errors[0].reason
    # a node also refuses its own key if it comes back
    kwargs = {0: {"key_log": logs[0], "key": _PsiKey(key.group, key._scalar)}}
    errors = _fails(SETS2, PsiSpec("size", job_id="job-3"), kwargs=kwargs)
    assert isinstance(errors[0], SessionError) and "already used" in str(errors[0])


def test_two_parties_with_the_same_key_are_refused():
    key = PsiKey.fresh()
    twin = _PsiKey(key.group, key._scalar)
    errors = _fails(SETS2, PsiSpec("size"), kwargs={0: {"key": key}, 1: {"key": twin}})
    assert any("same PSI public key" in str(e) for e in errors.values())


@pytest.mark.parametrize("bad", [bytes(32), b"\xff" * 32])
def test_invalid_points_and_the_identity_are_rejected(bad):
    on_send = _tamper(Kind.ENCODED, lambda pts: pts[:64] + bad + pts[96:])
    errors = _fails(SETS2, PsiSpec("intersection"), wrap={1: lambda ch: Wrapped(ch, on_send)})
    assert "'bank-b' sent its encoded list with 1 invalid point(s), the first at index 2" in errors[0].reason


def test_a_public_key_that_is_not_a_group_element_is_rejected():
    def bad_hello(peer, data):
        if data[4] != Kind.HELLO:
            return data
        hello = json.loads(bytes(unpack(data, Kind.HELLO, 1)[0]))
        hello["public_key"] = "ff" * 32
        return pack(Kind.HELLO, json.dumps(hello).encode())

    errors = _fails(SETS2, PsiSpec("size"), wrap={1: lambda ch: Wrapped(ch, bad_hello)})
    assert "'bank-b' announced a public key that is not a valid ristretto255 element" in errors[0].reason


def test_truncated_and_out_of_step_messages_are_rejected():
    errors = _fails(SETS2, PsiSpec("size"), wrap={1: lambda ch: Wrapped(ch, _tamper(Kind.ENCODED, lambda p: p[:-5]))})
    assert "'bank-b' sent" in errors[0].reason and "bytes for its encoded list" in errors[0].reason

    def out_of_step(peer, data):
        return pack(Kind.RESULT, b"") if data[4] == Kind.ENCODED else data

    errors = _fails(SETS2, PsiSpec("size"), wrap={1: lambda ch: Wrapped(ch, out_of_step)})
    assert "sent a RESULT message where ENCODED was expected" in errors[0].reason


@pytest.mark.parametrize(
    "field, other",
    [("job_id", PsiSpec("size", job_id="other-job")), ("mode", PsiSpec("intersection")),
     ("normalisation", PsiSpec("size", normalisation=Normalisation(casefold=False))),
     ("probes", PsiSpec("size", probes=8)), ("group", PsiSpec("size", group="edwards25519"))],
)
def test_parties_that_disagree_on_the_job_stop_before_hashing(field, other):
    errors = _fails(SETS2, [PsiSpec("size"), other])
    assert any(f"runs a different PSI job: {field}" in str(e) for e in errors.values())


class Crash(Exception):
    pass


def _crash_on(kind: Kind):
    def on_send(peer, data):
        if data[4] == kind:
            raise Crash("power lost")
        return data

    return on_send


@pytest.mark.parametrize("kind", [Kind.ENCODED, Kind.REPLY])
def test_a_party_failing_mid_psi_aborts_the_other(kind):
    start = time.perf_counter()
    errors = _fails(SETS2, PsiSpec("intersection"), wrap={1: lambda ch: Wrapped(ch, _crash_on(kind))})
    assert isinstance(errors[1], Crash)
    assert isinstance(errors[0], ProtocolAbort) and errors[0].party == "bank-b" and "power lost" in errors[0].reason
    assert time.perf_counter() - start < 5  # promptly, not by timeout


def test_a_party_vanishing_without_abort_times_out_the_other():
    wrap = {1: lambda ch: Wrapped(ch, _crash_on(Kind.REPLY), silent=True)}
    errors = _fails(SETS2, PsiSpec("size"), wrap=wrap, timeout=1.0)
    assert isinstance(errors[0], TransportError) and "timed out" in str(errors[0])


@pytest.mark.parametrize("who, kind", [(0, Kind.SHUFFLED), (1, Kind.CANDIDATES), (2, Kind.HOP)])
def test_three_parties_one_failing_aborts_both_others(who, kind):
    errors = _fails(SETS3, PsiSpec("intersection"), wrap={who: lambda ch: Wrapped(ch, _crash_on(kind))})
    assert isinstance(errors[who], Crash)
    others = [errors[q] for q in range(3) if q != who]
    assert all(isinstance(e, ProtocolAbort) and "power lost" in e.reason for e in others)
