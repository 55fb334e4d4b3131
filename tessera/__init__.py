"""Tessera: secure multi-party collaborative analytics.

The main entry points: :func:`run_local` (any analysis over several parties' data),
:class:`~tessera.mpc.Session` and :class:`~tessera.mpc.SecretTensor` (write your own party
programs), :func:`~tessera.runtime.run_threads` and :func:`~tessera.runtime.run_cluster`, and
:class:`Client`, the analyst's client of a running node (:mod:`tessera.node`).
"""

from typing import Any

from tessera.errors import TesseraError
from tessera.mpc import SecretTensor, Session
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
    "Client",
]


def __getattr__(name: str) -> Any:
    # the node client pulls in the HTTP stack, run_local the planner: import them only when asked
    # for (a party process imports neither)
    if name == "Client":
        from tessera.node.client import Client

        return Client
    if name in ("run_local", "LocalResult"):
        from tessera.jobs import local

        return getattr(local, name)
    raise AttributeError(f"module 'tessera' has no attribute {name!r}")
__version__ = "0.1.0"
