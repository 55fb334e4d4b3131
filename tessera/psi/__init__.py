"""Private set intersection: ECDH PSI over a prime-order group, for two or three parties, and
OPRF PSI from OT extension (KKRT) for two parties (``PsiSpec(protocol="oprf")``).

:func:`run_psi` runs one party's side of a job described by :class:`PsiSpec`: the size of the
intersection, the intersection revealed to named parties (as row indices in a common order), or
a plan for a secret-shared join (:class:`Alignment`). Module docstrings state the protocol and
what each party learns: ``_two.py``, ``_three.py``, ``_oprf.py``; identifiers: ``_ids.py``;
keys: ``_keys.py``; groups and throughput: ``tessera.ot.groups``; OT: ``tessera.ot``; cuckoo hashing:
``_cuckoo.py``; AES-based primitives: ``tessera.ot.aes``.
"""

from typing import TYPE_CHECKING

from tessera._exports import lazy_exports

if TYPE_CHECKING:
    from tessera.ot.groups import GROUPS, ristretto255_available
    from tessera.psi._api import run_psi
    from tessera.psi._ids import Normalisation
    from tessera.psi._keys import KeyLog, MemoryKeyLog, PsiKey
    from tessera.psi._result import MODES, PROTOCOLS, Alignment, PsiResult, PsiSpec

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
    "PROTOCOLS",
    "GROUPS",
    "ristretto255_available",
]

#: Imported when first used: a job's spec and result types (``PsiSpec``, ``Alignment``) load
#: no PSI protocol, group or OT extension; :func:`run_psi` loads them (PSI jobs only).
_LAZY = {"GROUPS": "tessera.ot.groups", "ristretto255_available": "tessera.ot.groups", "run_psi": "tessera.psi._api",
         "Normalisation": "tessera.psi._ids", "KeyLog": "tessera.psi._keys", "MemoryKeyLog": "tessera.psi._keys",
         "PsiKey": "tessera.psi._keys", "MODES": "tessera.psi._result", "PROTOCOLS": "tessera.psi._result",
         "Alignment": "tessera.psi._result", "PsiResult": "tessera.psi._result", "PsiSpec": "tessera.psi._result"}

__getattr__ = lazy_exports(__name__, _LAZY)
