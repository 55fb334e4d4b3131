"""Splitting values into shares and joining them back (additive, XOR, replicated).

Share arrays carry a leading axis of components: one for additive sharing, two for 3-party
replicated sharing, so that every linear operation acts on all components at once.
"""

from tessera.sharing.additive import additive_join, additive_split, xor_join, xor_split
from tessera.sharing.replicated import replicated_from_additive, replicated_join

__all__ = [
    "additive_join",
    "additive_split",
    "xor_join",
    "xor_split",
    "replicated_from_additive",
    "replicated_join",
]
