"""Two-party PSI from an oblivious PRF built on OT extension (after Kolesnikov–Kumaresan–
Rosulek–Trieu, CCS 2016, "Efficient batched oblivious PRF with applications to PSI": KKRT).

Chosen with ``PsiSpec(protocol="oprf")``; two parties, modes ``size`` and ``intersection``
(``aligned`` needs ECDH PSI). It replaces ``4n`` group scalar multiplications by about 1.5k (512
base OTs and the hello) plus AES and bit operations, which is what makes ``2^20 x 2^20`` fast.

Roles: the *receiver* R (role 0: the first recipient, so R always receives an output) and the
*sender* S (role 1). Both hash every normalised identifier (``_ids.py``) to a 128-bit digest
``v = blake2s(x; key from the job's salt)``.

1. hello (``_job.py``): agreement on the job (``protocol`` says OPRF), set sizes, salt. The salt
   keys every hash below, so nothing computed here is reusable in another job.
2. Base OTs (``tessera.ot.base``; R is the base-OT *sender* of 512 seed pairs, S the receiver with 512
   secret random bits ``s``): R sends ``A``, S sends ``B_1..B_512``.
3. R places its digests with cuckoo hashing into ``m = bins(n_R)`` bins (``_cuckoo.py``: 3 hash
   functions, ~1.27 n_R bins, no stash), each item ``x`` in bin ``j = h_i(x)`` for one ``i``.
   The code row of bin ``j`` is ``C(x, i)`` (empty bins: zero; any value would do). ``C`` is a pseudorandom code of
   512 bits: four fixed-key-AES MMO blocks of ``x`` with ``i`` and the block number in its low 4
   bits. R runs the OT extension and sends the ``512 x m`` bit matrix ``U`` and the number of
   the cuckoo attempt that succeeded (``tessera.ot.kkrt``). S obtains ``q_j = t_j XOR (C_j AND s)``.
4. The OPRF of bin ``j`` is ``F_j(y, i) = H(j, q_j XOR (C(y, i) AND s))`` (``H``: chained
   fixed-key-AES MMO over the 512-bit row with tweak ``j``, truncated to ``L`` bytes;
   ``tessera.ot.aes``). R knows ``F_j`` at its own item only: ``F_j(x, i) = H(j, t_j)``. S evaluates
   ``F_{h_i(y)}(y, i)`` for each of its items ``y`` and ``i = 0, 1, 2`` and sends these
   ``3 n_S`` values *sorted* (the sorted order is a function of the set of values alone, so it
   hides S's row order like a shuffle, and lets R match by binary search).
5. R matches its ``n_R`` values against them. The common order is the order of the matched
   values in S's sorted list (pseudorandom, independent of both row orders). ``size``: R sends
   the count to S if S is a recipient. ``intersection``: R sends S the matched positions, in
   the common order, if S is a recipient; S maps them back to its rows.

``L`` is ``ceil((40 + log2(3 n_R n_S)) / 8)`` bytes (at least 8, at most 16): a false match
anywhere among the ``3 n_R n_S`` comparisons has probability below ``2^-40`` (11 bytes at
``2^20 x 2^20``).

What each party learns (semi-honest, non-colluding; both learn each other's number of distinct
identifiers from the hello, and the code sizes follow from them):

* R, ``intersection`` mode: its common rows (its output); S's values for the other identifiers
  are pseudorandom to R (the OPRF hides ``F`` off R's own points: ``s`` is unknown to R and the
  code rows of distinct items differ in about 256 of 512 bits). The positions of matches in
  S's sorted list reveal nothing about S's rows.
* R, ``size`` mode: the count, **and necessarily which of its own identifiers are common** — in
  KKRT the receiver tests its own items. ``size`` mode returns only the count, but use
  ``protocol="ecdh"`` when R may learn the count alone.
* S: nothing from the OT extension (``U`` is masked by PRG outputs S cannot compute); then, if
  a recipient, the count (``size``) or its common rows in the common order (``intersection``);
  if not a recipient, not even the count.

A cuckoo-hashing failure (probability about ``2^-40`` per attempt) makes R retry with the next
attempt's hash functions, up to ``ATTEMPTS`` (3) in all, and then abort the job; S learns the
attempt number, i.e. whether R's set was one of the rare sets that failed.

**Parameters.** 512 base OTs and code width ``k = 512`` (KKRT needs ``k`` above ~424 for
128-bit security at these set sizes): two distinct code rows differ in fewer than 128 bits with
probability ``2^-100.7``, so among the at most ``3 (n_R + n_S)`` code rows of a ``2^20 x 2^20``
job all pairs differ in at least 128 bits except with probability ``2^-56``; guessing an OPRF
value off R's points then means guessing at least 128 unknown bits of ``s`` through the chained
hash. Statistical security 40 bits (false matches, cuckoo failure per attempt). Randomness:
``s`` and the base-OT scalars from ``os.urandom`` / libsodium; the cuckoo random walk uses
numpy's generator seeded from ``os.urandom`` (the table layout stays with R and needs no secrecy
beyond what the OT extension gives it).

Every received message is checked for its kind, part count and length (and the sorted list for
order, positions for range and repeats); a failing check aborts both parties naming the peer,
as in ``_job.py``. The security argument is for semi-honest parties only: a deviating party can
at least change its own input (as in any PSI), S can make R's output wrong, and nothing here
is claimed against a malicious R choosing rows that are not code words.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import time

import numpy as np

from tessera.errors import ProtocolAbort
from tessera.ot.aes import FixedKeyAes
from tessera.ot.base import BaseOtReceiver, BaseOtSender
from tessera.ot.groups import POINT_BYTES, BadPoints
from tessera.ot.kkrt import BIN_CHUNK, WIDTH, choice_mask, extend_receiver, extend_sender, receiver_rows, split
from tessera.psi._cuckoo import ATTEMPTS, HASHES, bins, insert, positions
from tessera.psi._job import Job
from tessera.psi._result import Alignment
from tessera.psi._wire import Kind, WireError, decode_positions, encode_positions, message

__all__ = ["run_oprf", "out_bytes", "digests", "codewords", "Keys"]

R, S = 0, 1
SIGMA = 40  # statistical security parameter (false matches, cuckoo failure)
CHUNK = 1 << 15  # sender items per batch (keeps each batch in cache)
MAX_MESSAGE = 1 << 28  # bytes: U and the OPRF values travel in messages below the 1 GiB frame limit
Output = tuple[int | None, np.ndarray | None, Alignment | None]


def out_bytes(n_r: int, n_s: int) -> int:
    """Bytes of each OPRF value sent: false-match probability below ``2^-SIGMA``."""
    bits = SIGMA + math.ceil(math.log2(max(2, HASHES * n_r * n_s)))
    return max(8, min(16, -(-bits // 8)))


class Keys:
    """The job's symmetric keys, all derived from its salted prefix (``Job.prefix``)."""

    def __init__(self, prefix: bytes) -> None:
        root = hashlib.sha512(b"tessera/psi/oprf/v1/keys\x00" + prefix).digest()
        self.root = root
        self.id_key = root[:32]
        self.code = FixedKeyAes(root[32:48])
        self.hash = FixedKeyAes(root[48:64])

    def cuckoo(self, attempt: int) -> FixedKeyAes:
        return FixedKeyAes(hashlib.sha256(self.root + b"cuckoo" + bytes([attempt])).digest()[:16])


def digests(keys: list[bytes], id_key: bytes) -> np.ndarray:
    """Keyed ``blake2s`` (128-bit output, key from the job's salt) of every identifier: ``(N, 2)``
    uint64. The one Python-level call per identifier (after normalisation): identifiers have
    variable length, and blake2s of short strings was the fastest collision-resistant choice in
    ``hashlib`` here (about 0.35 s per million)."""
    base = hashlib.blake2s(key=id_key, digest_size=16, person=b"tpsi-id")
    copy = base.copy
    out: list[bytes] = []
    add = out.append
    for k in keys:
        h = copy()
        h.update(k)
        add(h.digest())
    return np.frombuffer(b"".join(out), dtype=np.uint64).reshape(len(keys), 2)


_LOW4 = np.uint64(~np.uint64(15))
_BLOCKS = np.arange(4, dtype=np.uint64)


def codewords(aes: FixedKeyAes, dig: np.ndarray, index: np.ndarray | int, out: np.ndarray | None = None) -> np.ndarray:
    """The 512-bit code rows ``C(v, i)``: ``(N, 8)`` uint64 (four MMO blocks of ``v``, tweaked).

    Block ``b`` of ``C(v, i)`` is ``mmo(v')`` where ``v'`` is ``v`` with its low 4 bits replaced by
    ``4 i + b``: distinct inputs for every (item, hash function, block), as long as no two items'
    digests agree on their other 124 bits (probability below ``N^2 / 2^125``).
    """
    n = len(dig)
    out = np.empty((n, 8), dtype=np.uint64) if out is None else out
    idx = np.broadcast_to(np.asarray(index, dtype=np.uint64), (n,))
    x = np.empty((min(n, CHUNK), 4, 2), dtype=np.uint64)
    for c0 in range(0, n, CHUNK):
        c1 = min(n, c0 + CHUNK)
        xs = x[: c1 - c0]
        lo = (dig[c0:c1, 0] & _LOW4) | (idx[c0:c1] << np.uint64(2))
        np.bitwise_or(lo[:, None], _BLOCKS, out=xs[:, :, 0])
        xs[:, :, 1] = dig[c0:c1, 1, None]
        out[c0:c1] = aes.mmo(xs).reshape(c1 - c0, 8)
    return out


def sorted_order(prefix: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """The permutation that sorts values ``(prefix, tail)`` (uint64 prefixes, byte tails).

    One ``np.sort`` of the prefixes with the index packed into their low bits (several times
    faster than ``argsort``), then the rare runs whose prefixes agree above the index bits are
    re-sorted by full value, so the order depends on the values alone and never on their
    original order (which is the sender's row order).
    """
    n = len(prefix)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    k = int(n - 1).bit_length()
    mask = np.uint64((1 << k) - 1)
    order = (np.sort((prefix & ~mask) | np.arange(n, dtype=np.uint64)) & mask).astype(np.int64)
    hi = prefix[order] >> np.uint64(k)
    ties = np.flatnonzero(hi[1:] == hi[:-1])
    if len(ties):
        starts = ties[np.r_[True, ties[1:] != ties[:-1] + 1]]
        for a in starts.tolist():
            b = a + 1
            while b + 1 < n and hi[b + 1] == hi[a]:
                b += 1
            run = order[a : b + 1].tolist()
            order[a : b + 1] = sorted(run, key=lambda i: (int(prefix[i]), bytes(tail[i])))
    return order


def run_oprf(job: Job, timings: dict[str, float] | None = None) -> Output:
    """Run this party's side of OPRF PSI; returns (size, rows, alignment=None)."""
    clock = _Clock(timings)
    return _receiver(job, clock) if job.role == R else _sender(job, clock)


class _Clock:
    def __init__(self, out: dict[str, float] | None) -> None:
        self.out = out
        self.t = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        if self.out is not None:
            self.out[what] = self.out.get(what, 0.0) + now - self.t
        self.t = now


def _fail_here(job: Job, reason: str) -> ProtocolAbort:
    job.channel.abort(reason)
    return ProtocolAbort(job.channel.name, reason)


def _receiver(job: Job, clock: _Clock) -> Output:
    mode = job.spec.mode
    n_r, n_s = job.sizes[R], job.sizes[S]
    keys = Keys(job.prefix)
    base = BaseOtSender(job.engine, job.prefix)
    job.send(S, Kind.OT_BASE, base.message)
    job.round()
    clock.lap("base_ot_send")

    dig = digests(job.ids.keys, keys.id_key)
    clock.lap("digests")
    m = bins(n_r)
    for attempt in range(ATTEMPTS):
        placed = insert(positions(keys.cuckoo(attempt), dig, m), m)
        if placed is not None:
            break
    else:
        raise _fail_here(job, f"cuckoo hashing of {job.name(R)!r}'s identifiers failed {ATTEMPTS} times; run the job again")
    table, which = placed
    occupied = np.flatnonzero(table >= 0)
    items = table[occupied]
    bounds = np.searchsorted(occupied, np.arange(0, m + BIN_CHUNK, BIN_CHUNK))

    def code_rows(j0: int, j1: int) -> np.ndarray:
        """Rows j0..j1 of the code matrix: C(x, i) at occupied bins, zero at empty ones (any value
        would do there: U is masked by PRG outputs S cannot compute, whatever the rows hold)."""
        rows = np.zeros((j1 - j0, 8), dtype=np.uint64)
        a, b = bounds[j0 // BIN_CHUNK], bounds[j0 // BIN_CHUNK + 1]
        its = items[a:b]
        rows[occupied[a:b] - j0] = codewords(keys.code, dig[its], which[its])
        return rows.view(np.uint8)

    clock.lap("cuckoo_code")

    (b_points,) = job.recv(S, Kind.OT_BASE, 1)
    clock.lap("wait_base_ot")
    if len(b_points) != POINT_BYTES * WIDTH:
        raise job.fault(S, f"sent {len(b_points)} bytes of base-OT points; {WIDTH} points were expected")
    try:
        k0, k1 = base.keys(b_points)
    except BadPoints as e:
        raise job.fault(S, f"sent {e.count} invalid base-OT point(s), the first at index {e.first}") from None
    clock.lap("base_ot_keys")
    cuts = pieces(WIDTH, m // 8)
    msgs = [message(Kind.OT_EXT, [1, (b - a) * (m // 8)]) for a, b in cuts]
    if len(cuts) == 1:  # U is computed straight into the message
        u = np.frombuffer(msgs[0][1][1], np.uint8).reshape(WIDTH, m // 8)
    else:
        u = np.empty((WIDTH, m // 8), dtype=np.uint8)
    extend_receiver(k0, k1, code_rows, m, u, job.engine.map, job.engine.workers)
    clock.lap("ot_extension")
    for (a, b), (buf, (att_part, u_part)) in zip(cuts, msgs):
        att_part[0] = attempt
        if len(cuts) > 1:
            np.frombuffer(u_part, np.uint8)[:] = u[a:b].reshape(-1)
        job.channel.send(job.endpoints[S], buf)
    job.round()
    del msgs, u
    clock.lap("send_u")

    # R's own OPRF values H(j, t_j) at its occupied bins, while S works
    width = out_bytes(n_r, n_s)
    own = np.empty((len(occupied), 2), dtype=np.uint64)

    def own_values(part: tuple[int, int]) -> None:
        for j0, t_rows in receiver_rows(k0, *part):
            a, b = bounds[j0 // BIN_CHUNK], bounds[j0 // BIN_CHUNK + 1]
            rows = t_rows.view(np.uint64)[occupied[a:b] - j0]
            own[a:b] = keys.hash.row_hash(rows, occupied[a:b].astype(np.uint64))

    job.engine.map(own_values, split(m, job.engine.workers))
    own_prefix = own[:, 0].copy()
    own_tail = own.view(np.uint8)[:, 8:width]
    clock.lap("own_values")

    total = HASHES * n_s
    cuts = pieces(total, width)
    got = [job.recv(S, Kind.OPRF, 2) for _ in cuts]
    clock.lap("wait_values")
    for (a, b), (prefix_part, tail_part) in zip(cuts, got):
        if len(prefix_part) != 8 * (b - a) or len(tail_part) != (width - 8) * (b - a):
            raise job.fault(S, f"sent OPRF values of the wrong length ({HASHES} x {n_s} values of {width} bytes were expected)")
    sp = _joined([np.frombuffer(p, dtype="<u8") for p, _ in got])
    st = _joined([np.frombuffer(t, dtype=np.uint8) for _, t in got]).reshape(total, width - 8)
    del got
    if total > 1 and bool(np.any(sp[1:] < sp[:-1])):
        raise job.fault(S, "sent OPRF values that are not sorted")
    hit_r, hit_p = _match(own_prefix, own_tail, sp, st)
    by = np.argsort(hit_p, kind="stable")  # the common order: positions in S's sorted list
    pos, hit_r = hit_p[by], hit_r[by]
    keep = np.r_[True, pos[1:] != pos[:-1]] if len(pos) else np.zeros(0, dtype=bool)
    pos, hit_r = pos[keep], hit_r[keep]  # one match per position (a repeat needs a false match)
    mine = items[hit_r]  # indices of this party's distinct identifiers, in common order
    clock.lap("match")

    count = len(pos)
    if mode == "size":
        if job.is_recipient(S):
            job.send(S, Kind.RESULT, struct.pack("<Q", count))
            job.round()
        return count, None, None
    if job.is_recipient(S):
        job.send(S, Kind.RESULT, encode_positions(pos))
        job.round()
    return count, job.ids.rows[mine], None


def pieces(rows: int, row_bytes: int) -> list[tuple[int, int]]:
    """Row ranges of a matrix to send as messages of at most :data:`MAX_MESSAGE` bytes (at least one)."""
    per = max(1, MAX_MESSAGE // max(1, row_bytes))
    return [(a, min(rows, a + per)) for a in range(0, rows, per)] or [(0, 0)]


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """One array from received pieces (no copy for a single piece)."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _match(own_prefix: np.ndarray, own_tail: np.ndarray, sp: np.ndarray, st: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (own index, position in the sorted list) whose values are equal."""
    total = len(sp)
    if total == 0 or len(own_prefix) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    by = np.argsort(own_prefix)  # sorted queries: searchsorted runs far faster
    idx = np.empty(len(own_prefix), dtype=np.int64)
    idx[by] = np.searchsorted(sp, own_prefix[by])
    r = np.flatnonzero(idx < total)
    r = r[sp[idx[r]] == own_prefix[r]]
    p = idx[r]
    good = np.all(st[p] == own_tail[r], axis=1)
    hr, hp = [r[good]], [p[good]]
    # equal 8-byte prefixes with different tails (rare): look further along the run
    for i, q in zip(r[~good].tolist(), p[~good].tolist()):
        q += 1
        while q < total and sp[q] == own_prefix[i]:
            if bool(np.all(st[q] == own_tail[i])):
                hr.append(np.array([i]))
                hp.append(np.array([q]))
                break
            q += 1
    return np.concatenate(hr).astype(np.int64), np.concatenate(hp).astype(np.int64)


def _sender(job: Job, clock: _Clock) -> Output:
    mode = job.spec.mode
    n_r, n_s = job.sizes[R], job.sizes[S]
    keys = Keys(job.prefix)
    choices = np.unpackbits(np.frombuffer(os.urandom(WIDTH // 8), dtype=np.uint8), bitorder="little")
    (a_point,) = job.recv(R, Kind.OT_BASE, 1)
    clock.lap("wait_base_ot")
    if len(a_point) != POINT_BYTES:
        raise job.fault(R, "sent a base-OT message of the wrong length")
    base = BaseOtReceiver(job.engine, job.prefix, choices)
    try:
        job.send(R, Kind.OT_BASE, base.message(bytes(a_point)))
    except BadPoints:
        raise job.fault(R, f"sent a base-OT point that is not a valid {job.spec.group} element") from None
    job.round()
    seeds = base.keys()
    clock.lap("base_ot")

    # local work while R builds its table: digests and attempt-0 bins. (The code rows C(y, i) are
    # computed per chunk below: precomputing all 3 n_S of them costs more in fresh memory than
    # it saves.)
    dig = digests(job.ids.keys, keys.id_key)
    clock.lap("digests")
    m = bins(n_r)
    s_mask = choice_mask(choices).view(np.uint64)
    pos = positions(keys.cuckoo(0), dig, m)
    clock.lap("bins")

    cuts = pieces(WIDTH, m // 8)
    got = [job.recv(R, Kind.OT_EXT, 2) for _ in cuts]
    clock.lap("wait_u")
    attempt = got[0][0][0] if len(got[0][0]) == 1 else ATTEMPTS
    for (a, b), (attempt_part, u_part) in zip(cuts, got):
        if len(attempt_part) != 1 or attempt_part[0] != attempt or attempt >= ATTEMPTS:
            raise job.fault(R, "sent an invalid cuckoo attempt number")
        if len(u_part) != (b - a) * (m // 8):
            raise job.fault(R, f"sent {len(u_part)} bytes of OT extension; {(b - a) * (m // 8)} were expected")
    if attempt:
        pos = positions(keys.cuckoo(attempt), dig, m)
    u = _joined([np.frombuffer(u_part, dtype=np.uint8) for _, u_part in got]).reshape(WIDTH, m // 8)
    del got
    q = extend_sender(seeds, choices, u, job.engine.map, job.engine.workers).view(np.uint64).reshape(m, 8)
    clock.lap("ot_extension")

    width = out_bytes(n_r, n_s)
    values = np.empty((n_s * HASHES, 2), dtype=np.uint64)

    def oprf_values(c0: int) -> None:
        c1 = min(n_s, c0 + CHUNK)
        code = np.empty((c1 - c0, HASHES, 8), dtype=np.uint64)  # C(y, i) AND s
        for i in range(HASHES):
            codewords(keys.code, dig[c0:c1], i, out=code[:, i])
        code &= s_mask
        p = pos[c0:c1].reshape(-1)
        rows = q[p]
        rows ^= code.reshape(-1, 8)
        values[HASHES * c0 : HASHES * c1] = keys.hash.row_hash(rows, p.astype(np.uint64))

    job.engine.map(oprf_values, range(0, n_s, CHUNK))
    clock.lap("oprf_values")
    tails = values.view(np.uint8).reshape(-1, 16)[:, 8:width]
    order = sorted_order(values[:, 0], tails)
    msgs = []
    for a, b in pieces(len(order), width):  # the sorted values, written straight into messages
        buf, (p_part, t_part) = message(Kind.OPRF, [8 * (b - a), (width - 8) * (b - a)])
        if b > a:
            np.take(values[:, 0], order[a:b], out=np.frombuffer(p_part, dtype="<u8"))
            if width > 8:
                np.take(tails, order[a:b], axis=0, out=np.frombuffer(t_part, dtype=np.uint8).reshape(b - a, width - 8))
        msgs.append(buf)
    clock.lap("sort")
    for buf in msgs:
        job.channel.send(job.endpoints[R], buf)
    job.round()
    del msgs
    clock.lap("send_values")

    if not job.is_recipient(S):
        return None, None, None
    (res,) = job.recv(R, Kind.RESULT, 1)
    job.round()
    if mode == "size":
        if len(res) != 8 or (size := struct.unpack("<Q", res)[0]) > min(job.sizes):
            raise job.fault(R, "sent an impossible intersection size")
        return size, None, None
    try:
        hits = decode_positions(res, HASHES * n_s, distinct=False)
    except WireError as e:
        raise job.fault(R, str(e)) from None
    mine = order[hits] // HASHES
    seen = np.zeros(n_s, dtype=bool)
    seen[mine] = True
    if int(seen.sum()) != len(mine):  # also catches repeated positions
        raise job.fault(R, "sent repeated positions (or positions naming one identifier twice)")
    return len(mine), job.ids.rows[mine], None
