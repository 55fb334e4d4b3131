"""Three-party ECDH PSI around a ring, with the intersection found in two filtering steps.

Roles A, B, C (0, 1, 2, the order of ``parties``) with keys ``a``, ``b``, ``c``. Each list
travels the ring owner -> next -> next-but-one, picking up every key; the last party to apply
a key *finishes* the list. ``H`` hashes with the job's salt (``tessera.ot.groups``).

1. hello (``_job.py``).
2. Every party sends its list ``shuffle(k*H(id), probes r_j*G)`` to the next party
   (A -> B, B -> C, C -> A).
3. Every party applies its key to the list it received and passes it on (B: A's list -> C;
   C: B's list -> A; A: C's list -> B), and sends its probe positions and scalars to the party
   that will finish its own list. Then C finishes A's list, A finishes B's, B finishes C's;
   each checks the probes (the middle party used its announced key) and removes them.
4. A shuffles B's finished list and sends it to B.
5. B matches it against C's finished list (in ``aligned`` mode shuffled by B first) and sends
   the common encodings ``T`` (B∩C), sorted, to C (in ``aligned`` mode with their positions).
6. C matches ``T`` against A's finished list (in ``aligned`` mode shuffled by C first): the
   common encodings ``I`` = A∩B∩C, in increasing order (the common order). Then
   ``size``: C sends ``|I|`` to the recipients. ``intersection``: C sends A the positions of
   ``I`` in A's list, and ``I`` itself to A (if B is a recipient) and to B (if C is one).
   ``aligned``: C sends every party the three public selections.
7. ``intersection`` only: A sends B the positions of ``I`` in B's list, and B sends C those in
   C's list (each holds that list finished in its owner's order).

What each party learns (semi-honest, non-colluding; beyond its outputs and the set sizes):

* A: nothing more. It holds only B's finished list, which it cannot map to B's rows, and, if B
  is a recipient, the encodings ``I`` (so ``|I|``).
* B: ``|B∩C|`` (the size of ``T``); if C is a recipient, also ``|A∩B∩C|``.
* C: ``|B∩C|`` and ``|A∩B∩C|``.
* In ``aligned`` mode every party learns ``|A∩B∩C|`` (the selections are public) and nobody
  learns which rows are common: every selected position lies in a list permuted by its owner
  and then by another party.

Recipients in ``intersection`` mode also learn, for the common identifiers they already hold as
output, their values under other parties' keys (such as ``b*c*H(x)``); these do not help test
any other identifier (the one-more-DH assumption).

No party learns which of its rows are in a pairwise intersection: every finished list is held
by a party that cannot map it to rows (the owner's shuffle, and for B's list also A's shuffle,
stand in between). Put the party that may learn least first and the one that may learn the
two counts last.
"""

from __future__ import annotations

import struct

import numpy as np

from tessera.psi._job import Job
from tessera.psi._match import random_permutation, take
from tessera.psi._result import Alignment
from tessera.psi._wire import Kind, encode_positions

__all__ = ["run_three"]

A, B, C = 0, 1, 2
Output = tuple[int | None, np.ndarray | None, Alignment | None]


def run_three(job: Job) -> Output:
    """Run this party's side of the three-party protocol; returns (size, rows, alignment)."""
    r, t = job.role, job.spec.probes
    nx, pv = (r + 1) % 3, (r + 2) % 3
    own = job.encode_own(probes=t)
    job.send(nx, Kind.ENCODED, own.points)
    job.round()

    (x,) = job.recv(pv, Kind.ENCODED, 1)
    hop = job.mul_from(pv, job.points(pv, x, job.sizes[pv] + t, "its encoded list"), "its encoded list")
    job.send(nx, Kind.HOP, hop)
    job.send(pv, Kind.REVEAL, *own.reveal())
    job.round()

    # finish the list of ``nx``, whose middle step ``pv`` did
    n_fin = job.sizes[nx] + t
    (h,) = job.recv(pv, Kind.HOP, 1)
    what = f"{job.name(nx)!r}'s list after its step"
    h = job.points(pv, h, n_fin, what)
    pos, expected = job.probe_values(nx, job.recv(nx, Kind.REVEAL, 2), pv, n_fin)
    finished = job.check_probes_at(job.mul_from(pv, h, what), pos, expected, owner=nx, hop=pv)
    own_rows = job.ids.rows[own.perm[own.real_positions()]]
    steps = {A: _role_a, B: _role_b, C: _role_c}
    return steps[r](job, own_rows, finished)


def _role_a(job: Job, own_rows: np.ndarray, fin_b: bytes) -> Output:
    mode = job.spec.mode
    rho = random_permutation(job.sizes[B])
    job.send(B, Kind.SHUFFLED, take(fin_b, rho))
    job.round()
    job.round()  # step 5: B -> C
    if mode == "size":
        return _size_result(job)
    if mode == "aligned":
        return _aligned_result(job, own_rows, {job.endpoints[B]: rho})
    rows = size = None
    if job.is_recipient(A) or job.is_recipient(B):
        pos, common = job.recv(C, Kind.RESULT, 2)
        n_common = _count(job, common)
        if job.is_recipient(A):
            ia = job.positions(C, pos, len(own_rows), count=n_common if job.is_recipient(B) else None)
            rows, size = own_rows[ia], len(ia)
        if job.is_recipient(B):
            ib = _locate(job, common, fin_b, B)
            job.send(B, Kind.ROUTE, encode_positions(ib))
    job.round()
    if _route_step(job):
        job.round()
    return size, rows, None


def _role_b(job: Job, own_rows: np.ndarray, fin_c: bytes) -> Output:
    mode = job.spec.mode
    (shuffled_b,) = job.recv(A, Kind.SHUFFLED, 1)
    job.round()
    shuffled_b = job.points(A, shuffled_b, job.sizes[B], "B's shuffled list")
    tau = random_permutation(job.sizes[C]) if mode == "aligned" else None
    list_c = fin_c if tau is None else take(fin_c, tau)
    ib, ic = job.match(shuffled_b, list_c, (A, A), ("B's shuffled list", "C's list"))
    extra = (encode_positions(ib), encode_positions(ic)) if mode == "aligned" else (b"", b"")
    job.send(C, Kind.CANDIDATES, take(shuffled_b, ib), *extra)
    job.round()
    if mode == "size":
        return _size_result(job)
    if mode == "aligned":
        assert tau is not None
        return _aligned_result(job, own_rows, {job.endpoints[C]: tau})
    ic_route = np.zeros(0, dtype=np.int64)
    if job.is_recipient(C):
        (common,) = job.recv(C, Kind.RESULT, 1)
        _count(job, common)
        ic_route = _locate(job, common, fin_c, C)
    job.round()
    rows = size = None
    if job.is_recipient(B):
        (pos,) = job.recv(A, Kind.ROUTE, 1)
        ib_own = job.positions(A, pos, len(own_rows))
        rows, size = own_rows[ib_own], len(ib_own)
    if job.is_recipient(C):
        job.send(C, Kind.ROUTE, encode_positions(ic_route))
    if _route_step(job):
        job.round()
    return size, rows, None


def _role_c(job: Job, own_rows: np.ndarray, fin_a: bytes) -> Output:
    mode = job.spec.mode
    job.round()  # step 4: A -> B
    cand, pos_b, pos_c = job.recv(B, Kind.CANDIDATES, 3)
    job.round()
    n_t = len(cand) // 32
    cand = job.points(B, cand, n_t, "the candidate list")
    if n_t > min(job.sizes[B], job.sizes[C]):
        raise job.fault(B, "sent more candidates than its lists can have in common")
    pi = random_permutation(job.sizes[A]) if mode == "aligned" else None
    list_a = fin_a if pi is None else take(fin_a, pi)
    ia, it = job.match(list_a, cand, (B, B), ("A's list", "the candidate list"))
    size = len(ia)

    if mode == "size":
        for role in (A, B):
            if job.is_recipient(role):
                job.send(role, Kind.RESULT, struct.pack("<Q", size))
        if job.is_recipient(A) or job.is_recipient(B):
            job.round()
        return (size if job.is_recipient(C) else None), None, None

    if mode == "aligned":
        assert pi is not None
        tb = job.positions(B, pos_b, job.sizes[B], count=n_t)
        tc = job.positions(B, pos_c, job.sizes[C], count=n_t)
        sel = (encode_positions(ia), encode_positions(tb[it]), encode_positions(tc[it]))
        job.send(A, Kind.RESULT, *sel)
        job.send(B, Kind.RESULT, *sel)
        job.round()
        return size, None, _alignment(job, own_rows, {job.endpoints[A]: pi}, ia, tb[it], tc[it])

    common = take(cand, it)
    if job.is_recipient(A) or job.is_recipient(B):
        positions = encode_positions(ia) if job.is_recipient(A) else b""
        job.send(A, Kind.RESULT, positions, common if job.is_recipient(B) else b"")
    if job.is_recipient(C):
        job.send(B, Kind.RESULT, common)
    job.round()
    if not job.is_recipient(C):
        if _route_step(job):
            job.round()
        return None, None, None
    (pos,) = job.recv(B, Kind.ROUTE, 1)
    job.round()
    ic = job.positions(B, pos, len(own_rows), count=size)
    return size, own_rows[ic], None


# --- helpers ---------------------------------------------------------------------------------------


def _route_step(job: Job) -> bool:
    """Whether step 7 of ``intersection`` mode sends anything."""
    return job.is_recipient(B) or job.is_recipient(C)


def _count(job: Job, common: memoryview) -> int:
    if len(common) % 32:
        raise job.fault(C, "sent common encodings of the wrong length")
    return len(common) // 32


def _locate(job: Job, common: memoryview, finished: bytes, owner: int) -> np.ndarray:
    """Positions in ``finished`` (``owner``'s list in its order) of the common encodings, in order."""
    ic, il = job.match(common, finished, (C, (job.role + 2) % 3), ("common encodings", "a list"))
    if len(ic) != len(common) // 32:
        raise job.fault(C, f"sent common encodings that are not all in {job.name(owner)!r}'s list")
    return il  # ``common`` is sorted, so ``ic`` is 0, 1, 2, ...


def _size_result(job: Job) -> Output:
    """Steps 6 at A or B in ``size`` mode: receive the count if a recipient."""
    me = job.role
    size = None
    if job.is_recipient(me):
        (count,) = job.recv(C, Kind.RESULT, 1)
        if len(count) != 8 or (size := struct.unpack("<Q", count)[0]) > min(job.sizes):
            raise job.fault(C, "sent an impossible intersection size")
    if job.is_recipient(A) or job.is_recipient(B):
        job.round()
    return size, None, None


def _aligned_result(job: Job, own_rows: np.ndarray, shuffles: dict[int, np.ndarray]) -> Output:
    """Step 6 at A or B in ``aligned`` mode: receive the public selections."""
    sa, sb, sc = job.recv(C, Kind.RESULT, 3)
    job.round()
    ia = job.positions(C, sa, job.sizes[A])
    ib = job.positions(C, sb, job.sizes[B], count=len(ia))
    ic = job.positions(C, sc, job.sizes[C], count=len(ia))
    return len(ia), None, _alignment(job, own_rows, shuffles, ia, ib, ic)


def _alignment(
    job: Job, own_rows: np.ndarray, shuffles: dict[int, np.ndarray], ia: np.ndarray, ib: np.ndarray, ic: np.ndarray
) -> Alignment:
    a, b, c = job.endpoints
    return Alignment(
        lists=(a, b, c),
        sizes={a: job.sizes[A], b: job.sizes[B], c: job.sizes[C]},
        input_rows=own_rows,
        shuffler={a: c, b: a, c: b},
        shuffles=shuffles,
        select={a: ia, b: ib, c: ic},
    )
