"""MPC protocols behind one interface (:class:`~tessera.protocols.base.Protocol`).

* ``semi2k`` (:mod:`.semi2k`): n >= 2 parties, additive shares, dealer-assisted preprocessing;
* ``rep3`` (:mod:`.rep3`): 3 parties, replicated shares, no dealer.
"""

from tessera.protocols.base import Protocol
from tessera.protocols.dealer import Dealer
from tessera.protocols.rep3 import Rep3
from tessera.protocols.semi2k import Semi2k

#: Protocols by name. A protocol with a dealer lists the dealer as the endpoint after the parties.
PROTOCOLS: dict[str, type[Protocol]] = {"semi2k": Semi2k, "rep3": Rep3}
NEEDS_DEALER: dict[str, bool] = {"semi2k": True, "rep3": False}

__all__ = ["Protocol", "Semi2k", "Rep3", "Dealer", "PROTOCOLS", "NEEDS_DEALER"]
