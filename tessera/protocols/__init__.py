"""MPC protocols behind one interface (:class:`~tessera.protocols.base.Protocol`).

* ``semi2k`` (:mod:`.semi2k`): n >= 2 parties, additive shares, dealer-assisted preprocessing;
* ``semi2k+ot`` (:mod:`.otprep`): semi2k with no dealer, the parties make the correlations by OT;
* ``rep3`` (:mod:`.rep3`): 3 parties, replicated shares, no dealer.

A job names its protocol (``semi2k``, ``rep3``) and its preprocessing (``dealer``, ``ot``);
:func:`session_protocol` is the session-level name of the pair.
"""

from tessera.errors import SessionError
from tessera.protocols.base import Protocol
from tessera.protocols.dealer import Dealer
from tessera.protocols.otprep import Semi2kOt
from tessera.protocols.preprocessing import PREPROCESSING, Provider
from tessera.protocols.rep3 import Rep3
from tessera.protocols.semi2k import Semi2k

#: Protocols by name. A protocol with a dealer lists the dealer as the endpoint after the parties.
PROTOCOLS: dict[str, type[Protocol]] = {"semi2k": Semi2k, "semi2k+ot": Semi2kOt, "rep3": Rep3}
NEEDS_DEALER: dict[str, bool] = {"semi2k": True, "semi2k+ot": False, "rep3": False}
#: the protocols a job may name (``semi2k+ot`` is ``semi2k`` with ``preprocessing="ot"``)
JOB_PROTOCOLS = ("semi2k", "rep3")


def session_protocol(protocol: str, preprocessing: str = "dealer") -> str:
    """The session-level protocol of a job's ``protocol`` and ``preprocessing`` (``dealer``,
    ``ot``, or ``none`` for rep3); SessionError for a pair that does not exist."""
    if protocol == "semi2k" and preprocessing in PREPROCESSING:
        return "semi2k" if preprocessing == "dealer" else "semi2k+ot"
    if protocol == "rep3" and preprocessing in ("none", "dealer"):
        return "rep3"
    raise SessionError(f"protocol {protocol!r} has no preprocessing {preprocessing!r}; "
                       "semi2k takes 'dealer' or 'ot', rep3 needs none")


__all__ = ["Protocol", "Semi2k", "Semi2kOt", "Rep3", "Dealer", "Provider", "PROTOCOLS", "NEEDS_DEALER",
           "JOB_PROTOCOLS", "PREPROCESSING", "session_protocol"]
