"""Private set intersection: ECDH PSI over a prime-order group, for two or three parties.

:func:`run_psi` runs one party's side of a job described by :class:`PsiSpec`: the size of the
intersection, the intersection revealed to named parties (as row indices in a common order), or
a plan for a secret-shared join (:class:`Alignment`). Module docstrings state the protocol and
what each party learns: ``_two.py``, ``_three.py``; identifiers: ``_ids.py``; keys:
``_keys.py``; groups and throughput: ``_groups.py``.
"""

from tessera.psi._api import run_psi
from tessera.psi._groups import GROUPS, ristretto255_available
from tessera.psi._ids import Normalisation
from tessera.psi._keys import KeyLog, MemoryKeyLog, PsiKey
from tessera.psi._result import MODES, Alignment, PsiResult, PsiSpec

__all__ = [
    "run_psi",
    "PsiSpec",
    "PsiResult",
    "Alignment",
    "Normalisation",
    "PsiKey",
    "KeyLog",
    "MemoryKeyLog",
    "MODES",
    "GROUPS",
    "ristretto255_available",
]
