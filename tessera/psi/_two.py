"""Two-party ECDH PSI (after Huberman–Franklin–Hogg 1999; the size-only variant after De
Cristofaro–Gasti–Tsudik 2012, "Fast and private computation of cardinality of set intersection").

Roles: the *matcher* M (role 0; in ``size`` and ``intersection`` mode the first recipient) with
key ``a``, and the *other* party O (role 1) with key ``b``. ``H`` hashes a normalised identifier
with the job's salt into the group (``tessera.ot.groups``).

1. hello (``_job.py``): agreement on the job, salt, public keys ``aG``, ``bG``, set sizes.
2. M sends ``X = shuffle(a*H(m) for m in M's ids, plus probes r_j*G)``;
   O sends ``Y = shuffle(b*H(o) for o in O's ids)``.
3. O sends ``Z = b*X`` — in X's order in ``intersection`` mode, shuffled again by O in ``size``
   and ``aligned`` mode. M checks that probe ``j`` became ``r_j*(bG)`` (O used its announced
   key), drops the probes, computes ``W = a*Y`` and matches ``Z`` against ``W``.
4. ``size``: M sends the count to O if O is a recipient. ``intersection``: M sends O the
   positions in ``Y`` of the common elements, in the common order, if O is a recipient.
   ``aligned``: M shuffles ``W`` before matching and sends the public selections (below).

What each party learns (semi-honest; beyond the outputs of its mode and the peers' set sizes):

* ``size``: M learns only the count — ``Z`` is shuffled by O, so M cannot tell which of its
  elements matched; O learns nothing (not even the count unless it is a recipient).
* ``intersection``: M learns its common rows (it is always a recipient); O, if a recipient, its
  own common rows; otherwise nothing.
* ``aligned``: both learn only the count. M sees matches between ``Z`` (M's list permuted by
  its own shuffle and then O's) and ``W`` permuted by M's fresh permutation after O's shuffle:
  each side of every match sits in a space permuted by both parties.

Neither party can test a guessed identifier ``x`` against what it received: that needs
``b*H(x)`` (for M) or ``a*H(x)`` (for O), i.e. the other party's key (DDH in a prime-order group,
with ``H`` a random oracle).
"""

from __future__ import annotations

import struct

import numpy as np

from tessera.psi._job import Job
from tessera.psi._match import drop, random_permutation, take
from tessera.psi._result import Alignment
from tessera.psi._wire import Kind, encode_positions

__all__ = ["run_two"]

M, O = 0, 1  # noqa: E741 - the roles M and O of the docstring
Output = tuple[int | None, np.ndarray | None, Alignment | None]


def run_two(job: Job) -> Output:
    """Run this party's side of the two-party protocol; returns (size, rows, alignment)."""
    return _matcher(job) if job.role == M else _other(job)


def _matcher(job: Job) -> Output:
    mode, t = job.spec.mode, job.spec.probes
    own = job.encode_own(probes=t)
    job.send(O, Kind.ENCODED, own.points)
    job.round()
    (y,) = job.recv(O, Kind.ENCODED, 1)
    w = job.mul_from(O, job.points(O, y, job.sizes[O], "its encoded list"), "its encoded list")
    (z,) = job.recv(O, Kind.REPLY, 1)
    job.round()
    z = job.points(O, z, len(own.points) // 32, "its reply")
    expected = b"".join(job.engine.mul_one(r, job.public_keys[O]) for r in own.probe_scalars)
    if mode == "intersection":
        z_real = job.check_probes_at(z, own.probe_positions(), expected, owner=M, hop=O)
    else:  # O shuffled Z: find the probes by value
        ie, iz = job.match(expected, z, (M, O), ("probes", "its reply"))
        if len(ie) != t:
            raise job.fault(O, f"did not use the PSI key it announced ({t - len(ie)} of {t} probe checks failed)")
        z_real = drop(z, iz)
    own_rows = job.ids.rows[own.perm[own.real_positions()]]  # row of each element of z_real (unshuffled)

    if mode == "size":
        im, _ = job.match(z_real, w, (O, O), ("its reply", "its encoded list"))
        if job.is_recipient(O):
            job.send(O, Kind.RESULT, struct.pack("<Q", len(im)))
            job.round()
        return len(im), None, None

    if mode == "intersection":
        im, io = job.match(z_real, w, (O, O), ("its reply", "its encoded list"))
        if job.is_recipient(O):
            job.send(O, Kind.RESULT, encode_positions(io))
            job.round()
        return len(im), own_rows[im], None

    rho = random_permutation(job.sizes[O])
    im, io = job.match(z_real, take(w, rho), (O, O), ("its reply", "its encoded list"))
    job.send(O, Kind.RESULT, encode_positions(own.probe_positions()), encode_positions(im), encode_positions(io))
    job.round()
    return len(im), None, _alignment(job, own_rows, {job.endpoints[O]: rho}, im, io)


def _other(job: Job) -> Output:
    mode, t = job.spec.mode, job.spec.probes
    own = job.encode_own(probes=0)
    job.send(M, Kind.ENCODED, own.points)
    job.round()
    n_x = job.sizes[M] + t
    (x,) = job.recv(M, Kind.ENCODED, 1)
    z = job.mul_from(M, job.points(M, x, n_x, "its encoded list"), "its encoded list")
    pi = random_permutation(n_x) if mode != "intersection" else None
    job.send(M, Kind.REPLY, z if pi is None else take(z, pi))
    job.round()
    own_rows = job.ids.rows[own.perm]

    if mode == "size":
        if not job.is_recipient(O):
            return None, None, None
        (count,) = job.recv(M, Kind.RESULT, 1)
        job.round()
        if len(count) != 8 or (size := struct.unpack("<Q", count)[0]) > min(job.sizes):
            raise job.fault(M, "sent an impossible intersection size")
        return size, None, None

    if mode == "intersection":
        if not job.is_recipient(O):
            return None, None, None
        (pos,) = job.recv(M, Kind.RESULT, 1)
        job.round()
        io = job.positions(M, pos, job.sizes[O])
        return len(io), own_rows[io], None

    probe_part, sel_m, sel_o = job.recv(M, Kind.RESULT, 3)
    job.round()
    probe_pos = job.positions(M, probe_part, n_x, count=t)
    im = job.positions(M, sel_m, job.sizes[M])
    io = job.positions(M, sel_o, job.sizes[O], count=len(im))
    assert pi is not None
    # The permutation M's real elements went through, with M's probes taken out of both sides.
    is_probe = np.zeros(n_x, dtype=bool)
    is_probe[probe_pos] = True
    rank = np.cumsum(~is_probe) - 1
    kept = pi[~is_probe[pi]]
    return len(im), None, _alignment(job, own_rows, {job.endpoints[M]: rank[kept]}, im, io)


def _alignment(
    job: Job, own_rows: np.ndarray, shuffles: dict[int, np.ndarray], im: np.ndarray, io: np.ndarray
) -> Alignment:
    m, o = job.endpoints
    return Alignment(
        lists=(m, o),
        sizes={m: job.sizes[M], o: job.sizes[O]},
        input_rows=own_rows,
        shuffler={m: o, o: m},
        shuffles=shuffles,
        select={m: im, o: io},
    )
