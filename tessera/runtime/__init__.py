"""Running sessions: parties as threads (in-memory channels) or as processes over mutual TLS
(:mod:`~tessera.runtime.launcher`, :func:`~tessera.runtime.cluster.run_mesh`), and
:func:`run_cluster` for diagnostics and benchmark programs."""

from tessera.runtime.cluster import run_cluster, run_mesh
from tessera.runtime.inprocess import run_threads
from tessera.runtime.launcher import Failure, ProcessReport
from tessera.runtime.result import RunResult

__all__ = ["run_threads", "run_cluster", "run_mesh", "RunResult", "ProcessReport", "Failure"]
