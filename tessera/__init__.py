"""Tessera: secure multi-party collaborative analytics.

The main entry points: :func:`run_local` (any analysis over several parties' data; its
``.result`` reads like statsmodels), the scikit-learn-style :class:`LogisticRegression` and
:class:`LinearRegression` (:mod:`tessera.estimators`), :func:`draft_schema` (a schema proposed
from DataFrames or files, for the owners to review),
:class:`~tessera.mpc.Session` and :class:`~tessera.mpc.SecretTensor` (write your own party
programs), :func:`~tessera.runtime.run_threads` and :func:`~tessera.runtime.run_cluster`, and
:class:`Client`, the analyst's client of a running node (:mod:`tessera.node`).
"""

from typing import TYPE_CHECKING

from tessera._exports import lazy_exports
from tessera.errors import TesseraError

if TYPE_CHECKING:
    from tessera.data.draft import draft_schema
    from tessera.estimators import LinearRegression, LogisticRegression
    from tessera.jobs.local import LocalResult, run_local
    from tessera.mpc import SecretTensor, Session
    from tessera.node.client import Client
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
    "draft_schema",
    "LogisticRegression",
    "LinearRegression",
]


#: Imported when first asked for: ``run_local`` pulls in the analysis library and pandas, the
#: node client the HTTP stack, ``Session`` numpy and the protocols; a party process
#: (``python -m tessera.jobs.party``), which imports this package first, needs none of them here,
#: and ``tessera --version`` none at all.
_LAZY = {"run_local": "tessera.jobs.local", "LocalResult": "tessera.jobs.local", "Client": "tessera.node.client",
         "Session": "tessera.mpc", "SecretTensor": "tessera.mpc",
         "run_threads": "tessera.runtime", "run_cluster": "tessera.runtime", "RunResult": "tessera.runtime",
         "draft_schema": "tessera.data.draft",
         "LogisticRegression": "tessera.estimators", "LinearRegression": "tessera.estimators"}

__getattr__ = lazy_exports(__name__, _LAZY)
__version__ = "0.1.0"
