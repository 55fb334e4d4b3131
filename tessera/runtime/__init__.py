"""Running sessions: parties as threads (in-memory channels) or as processes over mutual TLS
(:mod:`~tessera.runtime.launcher`, :func:`~tessera.runtime.cluster.run_mesh`), and
:func:`run_cluster` for diagnostics and benchmark programs."""

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
