"""Running party programs: in-process threads now, separate processes over TLS (cluster)."""

from tessera.runtime.cluster import run_cluster
from tessera.runtime.inprocess import run_threads
from tessera.runtime.result import RunResult

__all__ = ["run_threads", "run_cluster", "RunResult"]
