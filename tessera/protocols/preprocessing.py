"""Where semi2k's correlated randomness comes from: one small interface, two providers.

A :class:`Provider` hands out one party's shares of a correlation named by kind, component
shapes and parameters (:func:`tessera.protocols.correlations.build` says what each kind must
satisfy). Every party asks for the same correlations in the same order; the answer's
``random`` components are ready at once, its ``derived`` ones when :meth:`Shares.derived`
returns. The online protocol (:mod:`tessera.protocols.semi2k`) is the same for every provider.

* :class:`~tessera.protocols.dealer.DealerClient`: a dealer endpoint (trusted not to collude);
* :class:`~tessera.protocols.otprep.OtProvider`: the parties themselves, from pairwise
  oblivious transfer (no third machine; semi-honest, any number of corrupted parties but one).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol as Interface

from tessera.ring.ring import RingArray

__all__ = ["Provider", "Shares", "Ready", "PREPROCESSING"]

#: the providers a semi2k session can use
PREPROCESSING = ("dealer", "ot")


class Shares(Interface):
    """One party's shares of one correlation (positions of components owned by another party
    hold ``None``)."""

    random: list[RingArray]

    def derived(self) -> list[RingArray]:
        """The derived components (may block until they arrive)."""
        ...


@dataclass
class Ready:
    """Shares whose components are all computed already."""

    random: list[RingArray]
    parts: list[RingArray]

    def derived(self) -> list[RingArray]:
        return self.parts


class Provider(abc.ABC):
    """A source of correlations for one party of a semi2k session."""

    @abc.abstractmethod
    def get(self, kind: str, shapes: Sequence[tuple[int, ...]], params: dict[str, int] | None = None) -> Shares:
        """This party's shares of a fresh correlation ``kind`` (see :mod:`.correlations`)."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """The session ends (a dealer is told to stop)."""
