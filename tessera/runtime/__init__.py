"""Running sessions: parties as threads (in-memory channels) or as processes over mutual TLS
(:mod:`~tessera.runtime.launcher`, :func:`~tessera.runtime.cluster.run_mesh`), and
:func:`run_cluster` for diagnostics and benchmark programs."""

from typing import TYPE_CHECKING

from tessera._exports import lazy_exports

if TYPE_CHECKING:
    from tessera.runtime.cluster import run_cluster, run_mesh
    from tessera.runtime.inprocess import run_threads
    from tessera.runtime.launcher import Failure, ProcessReport
    from tessera.runtime.result import RunResult

__all__ = ["run_threads", "run_cluster", "run_mesh", "RunResult", "ProcessReport", "Failure"]

#: Imported when first used: a party process needs the launcher's endpoint, not the cluster
#: runner nor the thread runtime.
_LAZY = {"run_cluster": "tessera.runtime.cluster", "run_mesh": "tessera.runtime.cluster",
         "run_threads": "tessera.runtime.inprocess", "Failure": "tessera.runtime.launcher",
         "ProcessReport": "tessera.runtime.launcher", "RunResult": "tessera.runtime.result"}

__getattr__ = lazy_exports(__name__, _LAZY)
