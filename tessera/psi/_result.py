"""What a PSI job asks for (:class:`PsiSpec`) and what it returns (:class:`PsiResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tessera.psi._ids import Normalisation

__all__ = ["Mode", "MODES", "Protocol", "PROTOCOLS", "PsiSpec", "PsiResult", "Alignment"]

Mode = Literal["size", "intersection", "aligned"]
MODES: tuple[str, ...] = ("size", "intersection", "aligned")
Protocol = Literal["ecdh", "oprf"]
PROTOCOLS: tuple[str, ...] = ("ecdh", "oprf")


@dataclass(frozen=True)
class PsiSpec:
    """What a PSI job computes and who learns it. Every party must pass an equal spec.

    ``mode``
        ``"size"``: recipients learn only the number of common identifiers.
        ``"intersection"``: each recipient learns which of its own rows are common, listed in
        one common order shared by all recipients (so their rows align).
        ``"aligned"``: nobody learns which rows are common; every party receives the plan for
        a secret-shared join (:class:`Alignment`). Its size is public.
    ``recipients``
        Endpoint indices that learn the output (``None``: every party). Ignored in ``aligned``.
    ``job_id``
        The job's identifier from the contract; mixed into the salt and checked to be equal.
    ``group``
        ``"ristretto255"`` (default) or ``"edwards25519"`` (see ``tessera.ot.groups``).
    ``probes``
        Random probe points each list carries to check that peers use their announced keys.
    ``protocol``
        ``"ecdh"`` (default): ECDH PSI for two or three parties, every mode (``_two.py``,
        ``_three.py``). ``"oprf"``: OPRF PSI from OT extension (KKRT; ``_oprf.py``), two
        parties, ``size`` and ``intersection`` mode only; about 70x faster at 2^20 identifiers
        (2.6 s against 182 s over TLS here).
        In ``intersection`` mode both reveal the same; in ``size`` mode the OPRF receiver (the
        first recipient) can also tell which of its own identifiers are common, so ``"ecdh"``
        stays the default and the choice is explicit.
    """

    mode: Mode
    recipients: tuple[int, ...] | None = None
    job_id: str = ""
    group: str = "ristretto255"
    normalisation: Normalisation = field(default_factory=Normalisation)
    probes: int = 16
    protocol: Protocol = "ecdh"


@dataclass(frozen=True)
class Alignment:
    """One party's part of the plan for a secret-shared join (``aligned`` mode).

    Every party's list of distinct identifiers enters the join as a column of rows. For the list
    owned by party ``q`` (endpoint indices throughout):

    1. ``q`` inputs (secret-shares) its rows in the order ``input_rows`` of *its* alignment;
    2. party ``shuffler[q]`` obliviously permutes the shared list with its private permutation
       ``shuffles[q]`` (``out[t] = in[shuffles[q][t]]``), which only that party holds;
    3. everyone keeps the public positions ``select[q]``, in order.

    After step 3 the ``k``-th kept row of every list belongs to the same identifier, and the
    kept rows are exactly the intersection. Nobody can tell which of its rows were kept: the
    positions are in a space permuted by two parties (the owner's order and the shuffler's
    permutation), each known to one party only. Steps 1-3 are MPC work that this layer does not
    perform: :func:`tessera.execution.aligned.shared_rows` does them, step 2 with the one-party
    oblivious permutation :func:`tessera.mpc.functions.permute_rows`.
    """

    lists: tuple[int, ...]
    """The list owners (endpoint indices), in role order."""
    sizes: dict[int, int]
    """Distinct identifiers in each list (public)."""
    input_rows: np.ndarray
    """This party's row indices, in the order it inputs them (private)."""
    shuffler: dict[int, int]
    """For each list owner, the endpoint that shuffles that list (public)."""
    shuffles: dict[int, np.ndarray]
    """The permutations this party applies, keyed by list owner (private)."""
    select: dict[int, np.ndarray]
    """For each list owner, the positions to keep after the shuffle, in common order (public)."""


@dataclass(frozen=True)
class PsiResult:
    """One party's output of a PSI job; fields it is not entitled to are ``None``."""

    mode: str
    size: int | None
    """Number of common identifiers (recipients in ``size``/``intersection`` mode; all in ``aligned``)."""
    rows: np.ndarray | None
    """``intersection`` mode, recipients: this party's row indices of the common identifiers,
    in the common order (the ``k``-th entry at every recipient is the same identifier)."""
    alignment: Alignment | None
    """``aligned`` mode: this party's part of the secret-shared join plan."""
    n_rows: int
    """Rows this party passed in."""
    n_distinct: int
    """Distinct normalised identifiers among them (``n_rows`` minus duplicates)."""
    peer_sizes: dict[int, int]
    """The distinct-identifier counts the peers announced (revealed in every mode)."""
    scalar_mults: int
    """Group scalar multiplications this party performed."""
    seconds: float

    @property
    def duplicates(self) -> int:
        """Rows dropped because an earlier row had the same normalised identifier."""
        return self.n_rows - self.n_distinct
