"""The state one party keeps during a PSI job, the hello step, and list steps shared by protocols.

Parties are addressed by *role* (their position in the job's role order) and mapped to
channel endpoints here. Whenever a peer's message is malformed, holds invalid points or fails a
check, :meth:`Job.fault` tells every peer to stop (``Channel.abort``) and returns the
:class:`~tessera.errors.ProtocolAbort` to raise: no partial result is ever returned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tessera.errors import ProtocolAbort, SessionError
from tessera.net.channel import Channel
from tessera.ot.groups import POINT_BYTES, SCALAR_BYTES, BadPoints, Engine
from tessera.psi._ids import PreparedIds
from tessera.psi._keys import KeyLog
from tessera.psi._match import Duplicates, as_rows, drop, match, random_permutation, take
from tessera.psi._result import MODES, PROTOCOLS, PsiSpec
from tessera.psi._wire import MAX_ELEMENTS, Kind, WireError, decode_positions, encode_positions, pack, unpack

__all__ = ["Job", "OwnList", "role_order", "check_spec"]

PROTOCOL = "tessera-psi/1"
OPRF_PROTOCOL = "tessera-psi-oprf/1"
Points = bytes | bytearray | memoryview


def check_spec(spec: PsiSpec, parties: Sequence[int], me: int) -> tuple[int, ...]:
    """Validate ``spec`` against the parties locally; the recipients (all parties if unset)."""
    if spec.mode not in MODES:
        raise SessionError(f"unknown PSI mode {spec.mode!r}; choose one of {list(MODES)}")
    if len(parties) not in (2, 3) or len(set(parties)) != len(parties):
        raise SessionError(f"PSI runs between 2 or 3 distinct parties, not {list(parties)}")
    if me not in parties:
        raise SessionError(f"endpoint {me} is not among the PSI parties {list(parties)}")
    if spec.protocol not in PROTOCOLS:
        raise SessionError(f"unknown PSI protocol {spec.protocol!r}; choose one of {list(PROTOCOLS)}")
    if spec.protocol == "oprf" and len(parties) != 2:
        raise SessionError(f"PSI protocol 'oprf' runs between two parties, not {len(parties)}; use protocol='ecdh'")
    if spec.protocol == "oprf" and spec.mode == "aligned":
        raise SessionError(
            "PSI mode 'aligned' runs only on the ECDH protocol (protocol='ecdh'); the OPRF protocol "
            "supports modes 'size' and 'intersection'"
        )
    if not 1 <= spec.probes <= 1024:
        raise SessionError(f"probes must be between 1 and 1024, not {spec.probes}")
    recipients = tuple(parties) if spec.recipients is None else tuple(spec.recipients)
    if not recipients or any(r not in parties for r in recipients):
        raise SessionError(
            f"PSI recipients {list(recipients)} must be a non-empty subset of the parties {list(parties)}"
        )
    return recipients


def role_order(spec: PsiSpec, parties: Sequence[int], recipients: Sequence[int]) -> list[int]:
    """Endpoints in role order. With two parties the matcher (role 0) is the first recipient."""
    if len(parties) == 2 and spec.mode != "aligned":
        first = next(p for p in parties if p in recipients)
        return [first] + [p for p in parties if p != first]
    return list(parties)


@dataclass
class OwnList:
    """A party's own list as sent: its encodings with probe points, shuffled.

    ``points[p]`` is element ``perm[p]`` of ``(own encodings in distinct-id order) + probes``;
    probe ``j`` is ``r_j * G`` (which looks like any other encoding to the peers).
    """

    points: bytes
    perm: np.ndarray
    n: int
    probe_scalars: list[bytes] = field(repr=False)

    def real_positions(self) -> np.ndarray:
        """Positions of the party's own identifiers, in list order."""
        return np.flatnonzero(self.perm < self.n)

    def probe_positions(self) -> np.ndarray:
        """The position of probe ``j`` at index ``j``."""
        pos = np.empty(len(self.probe_scalars), dtype=np.int64)
        where = np.flatnonzero(self.perm >= self.n)
        pos[self.perm[where] - self.n] = where
        return pos

    def reveal(self) -> tuple[bytes, bytes]:
        """Probe positions and scalars, for the party that checks the probes."""
        return encode_positions(self.probe_positions()), b"".join(self.probe_scalars)


@dataclass
class Job:
    """One party's view of a running PSI job."""

    channel: Channel
    endpoints: list[int]
    role: int
    spec: PsiSpec
    recipients: tuple[int, ...]
    engine: Engine
    scalar: bytes = field(repr=False)
    public_key: bytes
    ids: PreparedIds = field(repr=False)
    prefix: bytes = b""
    public_keys: list[bytes] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    # --- addressing and messages ----------------------------------------------------------------

    @property
    def n_roles(self) -> int:
        return len(self.endpoints)

    def name(self, role: int) -> str:
        return self.channel.names[self.endpoints[role]]

    def is_recipient(self, role: int) -> bool:
        return self.endpoints[role] in self.recipients

    def fault(self, role: int, what: str) -> ProtocolAbort:
        """Stop the job because of what ``role`` sent; the error to raise names it."""
        reason = f"PSI peer {self.name(role)!r} {what}"
        self.channel.abort(reason)
        return ProtocolAbort(self.channel.name, reason)

    def send(self, role: int, kind: Kind, *parts: Points) -> None:
        self.channel.send(self.endpoints[role], pack(kind, *parts))

    def recv(self, role: int, kind: Kind, nparts: int) -> list[memoryview]:
        try:
            return unpack(self.channel.recv(self.endpoints[role]), kind, nparts)
        except WireError as e:
            raise self.fault(role, str(e)) from None

    def round(self) -> None:
        self.channel.round()

    def points(self, role: int, part: memoryview, n: int, what: str) -> memoryview:
        """``part`` checked to hold ``n`` encodings."""
        if len(part) != POINT_BYTES * n:
            expected = f"{n} points of {POINT_BYTES} bytes were expected"
            raise self.fault(role, f"sent {len(part)} bytes for {what}; {expected}")
        return part

    def positions(self, role: int, part: memoryview, limit: int, count: int | None = None) -> np.ndarray:
        try:
            return decode_positions(part, limit, count)
        except WireError as e:
            raise self.fault(role, str(e)) from None

    def mul_from(self, role: int, points: Points, what: str) -> bytearray:
        """This party's key applied to ``points`` received from ``role``."""
        try:
            return self.engine.mul(self.scalar, points)
        except BadPoints as e:
            raise self.fault(
                role,
                f"sent {what} with {e.count} invalid point(s), the first at index {e.first}: not a "
                f"canonical {self.engine.group.name} encoding, or the identity",
            ) from None

    def match(
        self, a: Points, b: Points, roles: tuple[int, int], what: tuple[str, str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`match` with repeated encodings blamed on the role that sent them."""
        try:
            return match(a, b)
        except Duplicates as e:
            raise self.fault(roles[e.side], f"sent {what[e.side]} holding the same point twice") from None

    # --- the hello step -------------------------------------------------------------------------

    def _agreement(self) -> dict[str, object]:
        s = self.spec
        return {
            "protocol": PROTOCOL if s.protocol == "ecdh" else OPRF_PROTOCOL,
            "group": s.group,
            "mode": s.mode,
            "job_id": s.job_id,
            "parties": [self.name(r) for r in range(self.n_roles)],
            "recipients": [self.name(r) for r in range(self.n_roles) if self.is_recipient(r)],
            "normalisation": s.normalisation.describe(),
            "probes": s.probes,
        }

    def hello(self, key_log: KeyLog | None, nonce: bytes) -> None:
        """Exchange hellos: check every party runs the same job, fix the salt, check the keys.

        Reveals to every peer this party's number of distinct identifiers and its public key.
        The salt hashes the agreed job description and a fresh 32-byte nonce from every party,
        so it is new for every job even if a party's randomness failed. (A party that sends last
        could try many nonces; no salt helps it, as the salt only separates jobs.)
        """
        agreement = self._agreement()
        mine = dict(agreement, size=len(self.ids.keys), public_key=self.public_key.hex(), nonce=nonce.hex())
        body = json.dumps(mine, sort_keys=True).encode()
        for r in range(self.n_roles):
            if r != self.role:
                self.send(r, Kind.HELLO, body)
        self.round()
        nonces: list[bytes] = []
        for r in range(self.n_roles):
            if r == self.role:
                self.sizes.append(len(self.ids.keys))
                self.public_keys.append(self.public_key)
                nonces.append(nonce)
                continue
            (raw,) = self.recv(r, Kind.HELLO, 1)
            size, pk, their_nonce = self._parse_hello(r, raw, agreement)
            try:
                self.engine.mul_one(self.engine.group.random_scalar(), pk)
            except BadPoints:
                raise self.fault(r, f"announced a public key that is not a valid {self.spec.group} element") from None
            self.sizes.append(size)
            self.public_keys.append(pk)
            nonces.append(their_nonce)
        for r, pk in enumerate(self.public_keys):
            if self.public_keys.index(pk) != r:
                raise self.fault(r, "announced the same PSI public key as another party: keys must be fresh")
            if key_log is not None and key_log.seen(pk):
                if r == self.role:
                    raise SessionError(
                        "this party's PSI key was already used in an earlier job; draw PsiKey.fresh() for every job"
                    )
                raise self.fault(r, "announced a PSI public key already used in an earlier job: keys must be fresh")
        if key_log is not None:
            for pk in self.public_keys:
                key_log.record(pk)
        canon = json.dumps(agreement, sort_keys=True).encode()
        salt = hashlib.sha512(b"tessera/psi/v1/salt\x00" + canon + b"".join(nonces)).digest()[:32]
        self.prefix = b"tessera/psi/v1/h2g\x00" + self.spec.group.encode() + b"\x00" + salt

    def _parse_hello(self, role: int, raw: memoryview, agreement: dict[str, object]) -> tuple[int, bytes, bytes]:
        """(set size, public key, nonce) from a peer's hello that agrees on the job."""
        try:
            h = json.loads(bytes(raw).decode())
            size, pk, nonce = h["size"], bytes.fromhex(h["public_key"]), bytes.fromhex(h["nonce"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise self.fault(role, "sent a malformed PSI hello") from None
        for k, v in agreement.items():
            if h.get(k) != v:
                raise self.fault(role, f"runs a different PSI job: {k} is {h.get(k)!r}, here {v!r}")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_ELEMENTS - self.spec.probes:
            raise self.fault(role, "announced an invalid set size")
        if len(pk) != POINT_BYTES or len(nonce) != 32:
            raise self.fault(role, "sent a public key or nonce of the wrong length")
        return size, pk, nonce

    # --- list steps shared by the protocols -----------------------------------------------------

    def encode_own(self, probes: int) -> OwnList:
        """``k * H(id)`` for every distinct identifier, plus ``probes`` points ``r_j * G``, shuffled."""
        n = len(self.ids.keys)
        hashed = self.engine.hash_to_group(self.prefix, self.ids.keys)
        own = self.engine.mul(self.scalar, hashed)
        scalars = [self.engine.group.random_scalar() for _ in range(probes)]
        probe_points = b"".join(self.engine.base_mul(s) for s in scalars)
        perm = random_permutation(n + probes)
        return OwnList(take(bytes(own) + probe_points, perm), perm, n, scalars)

    def probe_values(self, owner: int, reveal: list[memoryview], hop: int, length: int) -> tuple[np.ndarray, bytes]:
        """The positions of ``owner``'s probes and what they must hold after ``hop``'s key and ours.

        Probe ``j`` was ``r_j * G``; after ``hop`` (public key ``P``) and this party it must be
        ``k * r_j * P``. The owner reveals positions and ``r_j`` only to the finishing party.
        """
        t = self.spec.probes
        pos = self.positions(owner, reveal[0], length, count=t)
        if len(reveal[1]) != SCALAR_BYTES * t:
            raise self.fault(owner, "sent probe scalars of the wrong length")
        expected = []
        for j in range(t):
            r = bytes(reveal[1][SCALAR_BYTES * j : SCALAR_BYTES * (j + 1)])
            try:
                expected.append(self.engine.mul_one(self.scalar, self.engine.mul_one(r, self.public_keys[hop])))
            except BadPoints:
                raise self.fault(owner, "revealed an invalid probe scalar") from None
        return pos, b"".join(expected)

    def check_probes_at(self, finished: Points, pos: np.ndarray, expected: bytes, owner: int, hop: int) -> bytes:
        """``finished`` without its probes, after checking they hold ``expected`` (list order kept)."""
        got = as_rows(finished)[pos]
        bad = int(np.sum(np.any(got != as_rows(expected), axis=1)))
        if bad:
            what = f"did not use the PSI key it announced on {self.name(owner)!r}'s list"
            what += f" ({bad} of {len(pos)} probe checks failed"
            what += ")" if owner == self.role else f"; or {self.name(owner)!r} revealed wrong probes)"
            raise self.fault(hop, what)
        return drop(finished, pos)
