"""Tessera: secure multi-party collaborative analytics.

The main entry points: :func:`run_local` (any analysis over several parties' data),
:class:`~tessera.mpc.Session` and :class:`~tessera.mpc.SecretTensor` (write your own party
programs), :func:`~tessera.runtime.run_threads` and :func:`~tessera.runtime.run_cluster`.
"""

from tessera.errors import TesseraError
from tessera.mpc import SecretTensor, Session
from tessera.plan.local import LocalResult, run_local
from tessera.runtime import RunResult, run_cluster, run_threads

__all__ = [
    "run_local",
    "LocalResult",
    "Session",
    "SecretTensor",
    "run_threads",
    "run_cluster",
    "RunResult",
    "TesseraError",
]
__version__ = "0.1.0"
