"""A party's running MPC computation: the protocol, its channel, and the fixed-point encoding.

No global state: every :class:`~tessera.mpc.tensor.SecretTensor` belongs to exactly one session,
and a computation is a function of its session.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import overload

import numpy as np

from tessera.errors import EncodingError, SessionError
from tessera.mpc.tensor import Opened, SecretTensor, check_bound, default_bound
from tessera.net.channel import Channel, CommStats
from tessera.protocols import NEEDS_DEALER, PROTOCOLS, Protocol
from tessera.protocols.base import Opening
from tessera.ring.fixedpoint import FixedPoint, decode, encode


class _Default:
    """The type of :data:`DEFAULT_BOUND`."""


#: ``Session.input``'s default ``bound``: :func:`~tessera.mpc.tensor.default_bound` of the encoding
DEFAULT_BOUND = _Default()

__all__ = ["Session", "RevealObserver", "ProgressObserver", "Opened", "SEALED", "SealedShares", "Contribution",
           "Received"]

#: Called after each reveal with the party names that received the values.
RevealObserver = Callable[[list[str]], None]

#: Called at each progress report with this party's fraction done (0..1, never decreasing) and
#: the stage's text.
ProgressObserver = Callable[[float, str], None]

#: The recipient that stands for "the job's analysts, sealed": ``reveal(..., to=SEALED)`` opens
#: nothing to any party; each party keeps its own shares for sealing to the analysts' keys
#: (:meth:`Session.seal_outputs`, :mod:`tessera.jobs.sealed`).
SEALED = "@sealed"


@dataclass(frozen=True)
class SealedShares:
    """This party's shares of one tensor revealed to :data:`SEALED`: its share array (``(k,
    *shape)`` uint64: additive ``k = 1``, replicated ``k = 2``) and the tensor's encoding."""

    shares: np.ndarray
    frac_bits: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.shares.shape[1:])


@dataclass(frozen=True)
class Contribution:
    """One input of a data owner that does not compute, as the owner encoded it (its ring
    elements, secret, never sent as they are), with the public encoding and bound."""

    ring: np.ndarray
    frac_bits: int
    bound: float | None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.ring.shape)


@dataclass(frozen=True)
class Received:
    """A compute party's shares of one input of a data owner that does not compute."""

    shares: np.ndarray
    frac_bits: int
    bound: float | None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.shares.shape[1:])


_TRANSCRIPT_TAG = b"tessera-transcript-v2\0"


class Session:
    """One party's side of an MPC computation among ``parties`` under ``protocol``.

    Create with :meth:`Session.start` (runs the protocol's set-up), or let a runtime do it.
    """

    def __init__(self, protocol: Protocol, parties: Sequence[str], frac_bits: int = 16, *,
                 session_id: bytes | None = None) -> None:
        if len(parties) != protocol.n:
            raise SessionError(f"{protocol.name} session has {protocol.n} parties, got names {list(parties)}")
        self.protocol = protocol
        self.parties = list(parties)
        self.fxp = FixedPoint(frac_bits)
        #: the session id the transcript is bound to (by default the channel's)
        self.session_id = protocol.ch.session_id if session_id is None else bytes(session_id)
        self._transcript = hashlib.sha256(_TRANSCRIPT_TAG)
        self._absorb({"session": self.session_id.hex(), "protocol": protocol.name, "parties": self.parties,
                      "frac_bits": frac_bits})
        self._reveal_observers: list[RevealObserver] = []
        self._before_reveal: list[RevealObserver] = []
        #: this party's shares of the tensors revealed to SEALED, in order (None: sealing is off)
        self._sealed: list[list[SealedShares]] | None = None
        self._progress_observers: list[ProgressObserver] = []
        self._fraction, self._stage = 0.0, ""
        self._span = (0.0, 1.0)  # the part of the whole job the current stage stands for
        #: the data owners, in input order (by default the parties: every owner computes)
        self.owners: list[str] = list(parties)
        #: the inputs received from each owner that does not compute, in the order it made them
        self._received: dict[str, deque[Received]] = {}
        #: at an owner that does not compute, the rehearsal of the secure stage (see
        #: :mod:`tessera.mpc.contrib`): the owner it stands for, and the inputs it made
        self._acting_as: str | None = None
        self._recording: list[Contribution] | None = None
        protocol.open_observers.append(self._record_opening)

    @classmethod
    def start(
        cls, protocol: str, channel: Channel, parties: Sequence[str], frac_bits: int = 16, *,
        session_id: bytes | None = None,
    ) -> Session:
        """Build the named protocol over ``channel`` and agree its seeds with the other parties
        (the transcript is bound to ``session_id``, by default the channel's)."""
        try:
            proto_cls = PROTOCOLS[protocol]
        except KeyError:
            raise SessionError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}") from None
        proto = proto_cls(channel, len(parties))
        proto.setup()
        return cls(proto, parties, frac_bits, session_id=session_id)

    @staticmethod
    def needs_dealer(protocol: str) -> bool:
        return NEEDS_DEALER[protocol]

    # -- identity ----------------------------------------------------------------------------

    @property
    def me(self) -> int:
        return self.protocol.me

    @property
    def party(self) -> str:
        """This party's name."""
        return self.parties[self.me]

    @property
    def n_parties(self) -> int:
        return len(self.parties)

    @property
    def frac_bits(self) -> int:
        return self.fxp.frac_bits

    @property
    def stats(self) -> CommStats:
        """Rounds and bytes this party has sent so far."""
        return self.protocol.ch.stats

    def party_index(self, party: int | str) -> int:
        """Index of a party given by name or index; a clear error for an unknown party."""
        if isinstance(party, (int, np.integer)) and not isinstance(party, bool):
            if 0 <= party < self.n_parties:
                return int(party)
        elif isinstance(party, str) and party in self.parties:
            return self.parties.index(party)
        raise SessionError(f"unknown party {party!r}; the parties are {self.parties}")

    # -- values in and out -------------------------------------------------------------------

    def input(
        self,
        owner: int | str,
        value: object = None,
        *,
        shape: Sequence[int] | None = None,
        frac_bits: int | None = None,
        bound: float | _Default | None = DEFAULT_BOUND,
    ) -> SecretTensor:
        """Secret-share a value held by ``owner``; other parties pass no value.

        With ``shape`` given (by every party) nothing but the shares travels, and the value is
        encoded with ``frac_bits`` (the session's default unless given). Without it the owner
        first announces the shape and the encoding: 0 fractional bits for integer and boolean
        arrays, the session's default for floats. Reveals the shape and encoding only.

        ``bound`` (public, given by every party) declares ``|value| <= bound``: the owner refuses
        a value beyond it, and the tensor carries it, so every later operation that could wrap
        around the ring is refused before it runs (see :mod:`tessera.mpc.tensor`). Without it the
        input gets :func:`~tessera.mpc.tensor.default_bound` of its encoding (the largest power of
        two whose square still fits: ``2^(30 - f)``), so a product of two inputs is always checked.
        ``bound=None`` leaves the tensor untracked: only for an analysis whose plan has checked
        every magnitude of its secure stage (``check_magnitude``, the same limit).
        """
        o = self.party_index(owner)
        ch = self.protocol.ch
        if self.me == o:
            if value is None:
                raise SessionError(f"party {self.party!r} owns this input but passed no value")
            arr = np.asarray(value)
            if shape is not None and tuple(arr.shape) != tuple(shape):
                raise SessionError(f"input has shape {arr.shape}, declared {tuple(shape)}")
            if shape is None:
                f = frac_bits if frac_bits is not None else (0 if arr.dtype.kind in "biu" else self.frac_bits)
                header = json.dumps({"shape": list(arr.shape), "f": f}).encode()
                for j in range(self.n_parties):
                    if j != o:
                        ch.send(j, header)
                ch.round()
            else:
                f = self.frac_bits if frac_bits is None else frac_bits
            shp = tuple(arr.shape)
            limit = default_bound(f) if isinstance(bound, _Default) else bound
            if limit is not None and arr.size and not float(np.max(np.abs(arr.astype(np.float64)))) <= limit:
                raise EncodingError(
                    f"party {self.party!r}'s input has values beyond its declared bound {limit:g}"
                    if not isinstance(bound, _Default)
                    else f"party {self.party!r}'s input has values beyond {limit:g}, the default bound of an input "
                         f"at {f} fractional bits; declare a public bound (input(..., bound=B)) or fewer fractional bits")
            ring = encode(arr, f)
        else:
            if value is not None:
                raise SessionError(f"party {self.party!r} passed a value for an input owned by {self.parties[o]!r}")
            if shape is None:
                ch.round()
                header = json.loads(bytes(ch.recv(o)))
                shp, f = tuple(header["shape"]), int(header["f"])
            else:
                shp, f = tuple(int(d) for d in shape), self.frac_bits if frac_bits is None else frac_bits
            ring = None
        b = default_bound(f) if isinstance(bound, _Default) else bound
        check_bound(b, f, "a declared input bound")
        return SecretTensor(self, self.protocol.input(o, ring, shp), f, b)

    # -- data owners -------------------------------------------------------------------------

    def set_owners(self, owners: Sequence[str], received: Mapping[str, Sequence[Received]] | None = None) -> None:
        """Declare the job's data owners (in input order) and what each owner that does not
        compute has sent (its inputs, in order, as this party's shares). Every party passes the
        same owners; the shapes and encodings of the received inputs enter the transcript."""
        if len(set(owners)) != len(owners) or not owners:
            raise SessionError(f"data owners must be distinct and at least one: {list(owners)}")
        received = dict(received or {})
        outside = [o for o in owners if o not in self.parties]
        if sorted(received) != sorted(outside):
            raise SessionError(f"inputs received from {sorted(received)}, but the owners that do not compute are "
                               f"{sorted(outside)}")
        self.owners = list(owners)
        self._received = {o: deque(received[o]) for o in outside}
        for o in outside:
            self._absorb({"kind": "owner-inputs", "owner": o,
                          "shapes": [[list(r.shape), r.frac_bits] for r in self._received[o]]})

    def rehearse_as(self, owner: str, owners: Sequence[str]) -> list[Contribution]:
        """Make this session a rehearsal for data owner ``owner`` (one that does not compute, see
        :mod:`tessera.mpc.contrib`): :meth:`owner_inputs` records its inputs in the list returned
        and stands in zeros for every input. Only for a session whose protocol computes nothing."""
        self.owners = list(owners)
        self._acting_as = owner
        self._recording = []
        return self._recording

    @property
    def owns(self) -> bool:
        """Whether this party inputs data of its own (it is a data owner)."""
        return (self._acting_as or self.party) in self.owners

    def owner_inputs(self, value: object = None, *, shape: Sequence[int] | None = None,
                     frac_bits: int | None = None, bound: float | None = None) -> list[SecretTensor]:
        """One secret tensor per data owner (in :attr:`owners` order): each owner's ``value``.

        Every party calls it alike; a data owner passes its value, any other party None. An
        owner that computes inputs it here (:meth:`input`, same arguments); the input of an owner
        that does not compute is the next one it sent before the job (its shape, encoding and
        bound are checked against these). Reveals the shapes (public) and nothing else.
        """
        me = self._acting_as or self.party
        if (value is None) == (me in self.owners):
            raise SessionError(f"party {me!r} {'owns data but passed no value' if value is None else 'owns no data'}"
                               " for an input of the data owners")
        out: list[SecretTensor] = []
        for o in self.owners:
            if self._recording is not None:
                out.append(self._rehearse(o == me, value, shape, frac_bits, bound))
            elif o in self.parties:
                out.append(self.input(o, value if o == self.party else None, shape=shape, frac_bits=frac_bits,
                                      bound=bound))
            else:
                out.append(self._from_owner(o, shape, frac_bits, bound))
        return out

    def check_owner_inputs_used(self) -> None:
        """Refuse a secure stage that left inputs of an owner unused (owner and parties disagree)."""
        left = {o: len(q) for o, q in self._received.items() if q}
        if left:
            raise SessionError(f"inputs sent by data owners were not used: {left}; the owners ran another job")

    def _from_owner(self, owner: str, shape: Sequence[int] | None, frac_bits: int | None,
                    bound: float | None) -> SecretTensor:
        queue = self._received[owner]
        if not queue:
            raise SessionError(f"data owner {owner!r} sent no further input: this analysis asks its data owners for "
                               "inputs after an interactive step, so every data owner must compute")
        r = queue.popleft()
        want_f = r.frac_bits if shape is None and frac_bits is None else (
            self.frac_bits if frac_bits is None else frac_bits)
        if (shape is not None and tuple(shape) != r.shape) or r.frac_bits != want_f or r.bound != bound:
            raise SessionError(f"data owner {owner!r} sent an input of shape {r.shape} at {r.frac_bits} fractional "
                               f"bits (bound {r.bound}); the job expects {None if shape is None else tuple(shape)} "
                               f"at {want_f} (bound {bound}): the owner ran another job")
        if bound is not None:
            check_bound(bound, r.frac_bits, "a declared input bound")
        return SecretTensor(self, r.shares, r.frac_bits, bound)

    def _rehearse(self, mine: bool, value: object, shape: Sequence[int] | None, frac_bits: int | None,
                  bound: float | None) -> SecretTensor:
        """At an owner that does not compute: record its own input (encoded as :meth:`input`
        encodes it) and stand in zeros for every input (no values are computed here)."""
        assert self._recording is not None
        k = self.protocol.components
        if not mine:
            own = np.asarray(value).shape
            shp = tuple(shape) if shape is not None else (0, *own[1:])
            f = self.frac_bits if frac_bits is None else frac_bits
            return SecretTensor(self, np.zeros((k, *shp), dtype=np.uint64), f, bound)
        arr = np.asarray(value)
        if shape is not None and tuple(arr.shape) != tuple(shape):
            raise SessionError(f"input has shape {arr.shape}, declared {tuple(shape)}")
        if shape is None:
            f = frac_bits if frac_bits is not None else (0 if arr.dtype.kind in "biu" else self.frac_bits)
        else:
            f = self.frac_bits if frac_bits is None else frac_bits
        if bound is not None and arr.size and not float(np.max(np.abs(arr.astype(np.float64)))) <= bound:
            raise EncodingError(f"party {self._acting_as!r}'s input has values beyond its declared bound {bound:g}")
        self._recording.append(Contribution(np.asarray(encode(arr, f), dtype=np.uint64), f, bound))
        return SecretTensor(self, np.zeros((k, *arr.shape), dtype=np.uint64), f, bound)

    @overload
    def reveal(self, *tensors: SecretTensor, to: None = None) -> list[Opened]: ...

    @overload
    def reveal(self, *tensors: SecretTensor, to: int | str | Sequence[int | str] | None) -> list[Opened | None]: ...

    def reveal(
        self, *tensors: SecretTensor, to: int | str | Sequence[int | str] | None = None
    ) -> list[Opened] | list[Opened | None]:
        """Open tensors in one round to the parties ``to`` (default: all) and decode them.

        Recipients get float64 arrays (int64 for integer tensors); others get ``None`` (so an
        opening to every party, ``to=None``, is never ``None``).
        Reveals exactly these values to exactly these parties.

        ``to=SEALED`` (or ``[SEALED]``; only once :meth:`seal_outputs` was called) opens nothing:
        every party gets ``None`` and keeps its own shares of the tensors, to be sealed to the
        job's analysts. No message is sent; the output hooks run as for any output.
        """
        for t in tensors:
            self.check_own(t)
        if to == SEALED or (isinstance(to, (list, tuple)) and SEALED in to):
            return self._reveal_sealed(tensors, to)
        recipients = self._recipients(to)
        names_before = [self.parties[r] for r in recipients]
        for obs in self._before_reveal:
            obs(names_before)
        opened = self.protocol.open([t.shares for t in tensors], recipients)
        names = [self.parties[r] for r in recipients]
        for obs in self._reveal_observers:
            obs(names)
        return [None if v is None else decode(v, t.frac_bits) for v, t in zip(opened, tensors)]

    def seal_outputs(self) -> list[list[SealedShares]]:
        """Allow reveals to :data:`SEALED` from now on; returns the list that receives, for each
        such reveal, this party's shares of its tensors (the caller seals them)."""
        if self._sealed is None:
            self._sealed = []
        return self._sealed

    def _reveal_sealed(self, tensors: Sequence[SecretTensor],
                       to: int | str | Sequence[int | str]) -> list[Opened | None]:
        if self._sealed is None:
            raise SessionError("this session seals no outputs: a reveal to the job's analysts needs a job whose "
                               "recipients are analysts with registered box keys")
        if [to] != [SEALED] and list(to) != [SEALED]:  # type: ignore[arg-type]
            raise SessionError(f"a sealed reveal goes to the analysts alone, not also to {to!r}")
        for obs in self._before_reveal:
            obs([SEALED])
        self._sealed.append([SealedShares(np.array(t.shares, dtype=np.uint64, copy=True), t.frac_bits)
                             for t in tensors])
        # every party records the same: the opening's kind, shapes and recipient, never values
        self._absorb({"kind": "sealed", "shapes": [list(t.shape) for t in tensors], "to": [SEALED], "values": False})
        for obs in self._reveal_observers:
            obs([SEALED])
        return [None] * len(tensors)

    def _recipients(self, to: int | str | Sequence[int | str] | None) -> list[int]:
        if to is None:
            return list(range(self.n_parties))
        if isinstance(to, (str, int)):
            to = [to]
        if not to:
            raise SessionError("reveal needs at least one recipient")
        return sorted({self.party_index(p) for p in to})

    def check_own(self, t: SecretTensor) -> None:
        if t.session is not self:
            raise SessionError("cannot combine secret tensors from different sessions")

    # -- observation -------------------------------------------------------------------------

    def before_reveal(self, observer: RevealObserver) -> None:
        """Call ``observer(recipient_names)`` before this party sends its shares of a revealed
        value (e.g. to mark a privacy budget as spent: once a share is out it may leak)."""
        self._before_reveal.append(observer)

    def on_reveal(self, observer: RevealObserver) -> None:
        """Call ``observer(recipient_names)`` after every reveal (audit, metrics, progress)."""
        self._reveal_observers.append(observer)

    # -- progress ----------------------------------------------------------------------------

    def progress(self, fraction: float, stage: str = "") -> None:
        """Report that this party is ``fraction`` (0..1) through the current stage (the whole job
        outside :meth:`progress_span`), at ``stage`` (text, e.g. "Newton iteration 3 of 8").

        Local and cheap: nothing is sent, and it reveals nothing (a computation's loop structure
        is public, the same at every party). The job's fraction never decreases: a report below
        the one before only updates the stage's text."""
        f = float(fraction) if math.isfinite(float(fraction)) else 0.0
        lo, hi = self._span
        done = max(self._fraction, lo + (hi - lo) * min(1.0, max(0.0, f)))
        self._fraction = min(1.0, done)
        if stage:
            self._stage = stage
        for obs in self._progress_observers:
            obs(self._fraction, self._stage)

    @contextmanager
    def progress_span(self, lo: float, hi: float, stage: str = "") -> Iterator[None]:
        """Within the block, :meth:`progress` fractions are of the part ``lo..hi`` of the current
        stage (spans nest): the block starts at ``lo`` and is at ``hi`` once it ends."""
        outer = self._span
        a, b = outer[0] + (outer[1] - outer[0]) * lo, outer[0] + (outer[1] - outer[0]) * hi
        self.progress(lo, stage)
        self._span = (a, b)
        try:
            yield
        finally:
            self._span = outer
        self.progress(hi)

    @property
    def progress_now(self) -> tuple[float, str]:
        """This party's fraction of the job done so far and the stage's text."""
        return self._fraction, self._stage

    def on_progress(self, observer: ProgressObserver) -> None:
        """Call ``observer(fraction, stage)`` at every :meth:`progress` report."""
        self._progress_observers.append(observer)

    def _absorb(self, record: dict[str, object]) -> None:
        data = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        self._transcript.update(len(data).to_bytes(8, "big") + data)

    def _record_opening(self, opening: Opening) -> None:
        # Every opening enters the hash with its kind, shapes and recipients; the values too
        # when every party received them (then every party hashes the same bytes). A partial
        # opening's values differ between recipients and the others, so only its shape does.
        everyone = len(opening.recipients) == self.n_parties
        self._absorb({"kind": opening.kind, "shapes": [list(s) for s in opening.shapes],
                      "to": list(opening.recipients), "values": everyone})
        if everyone:
            for v in opening.values:
                if v is not None:
                    data = np.ascontiguousarray(v).tobytes()
                    self._transcript.update(len(data).to_bytes(8, "big") + data)

    def transcript_hash(self) -> str:
        """SHA-256 over the session id, the protocol and parties, and every opening so far (its
        kind, shapes and recipients, and the values opened to everybody). Identical at every
        party of one session; different for another session or another computation."""
        return self._transcript.copy().hexdigest()

    def close(self) -> None:
        """Finish the protocol (a dealer is released)."""
        self.protocol.close()
