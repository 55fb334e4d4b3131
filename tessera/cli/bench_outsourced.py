"""``tessera bench`` outsourced workloads: many hospitals (data owners) on few compute parties.

``--n`` is the number of hospitals (each a study of 60-200 patients, :func:`many_hospitals`),
``--parties`` the number of compute parties. ``outsourced_meta`` / ``outsourced_describe``: the
hospitals only input (each its own process: local stage, shares over mutual TLS, gone); the
compute parties run the secure stage. ``everyone_meta`` / ``everyone_describe``: the same job
with every hospital a semi2k party (``--protocol semi2k``), the comparison. End to end: process
start, TLS set-up, local stage, secure stage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tessera.data.synthetic import many_hospitals
from tessera.jobs.local import LocalResult, run_local
from tessera.runtime.relay import Relay

__all__ = ["OUTSOURCED"]

_COLUMNS = ["age", "biomarker_1"]

#: an analysis workload: (owners, compute parties, protocol, WAN relay, preprocessing) -> its result
Workload = Callable[[int, int, str, Relay | None, str | None], LocalResult]


def _job(analysis: str, owners: int, compute: list[str] | None, protocol: str, relay: Relay | None,
         pre: str | None) -> LocalResult:
    frames, schema, _ = many_hospitals(owners, rows=(60, 200))
    params: dict[str, Any] = ({"outcome": "outcome", "treatment": "treatment"} if analysis == "meta_analysis"
                              else {"columns": _COLUMNS})
    return run_local(analysis, frames, schema, protocol=protocol, compute=compute, timeout=1800, relay=relay,
                     preprocessing=pre, **params)


def _outsourced(analysis: str) -> Workload:
    return lambda n, parties, protocol, relay, pre: _job(analysis, n, [f"c{i + 1}" for i in range(parties)], protocol,
                                                         relay, pre)


def _everyone(analysis: str) -> Workload:
    return lambda n, parties, protocol, relay, pre: _job(analysis, n, None, protocol, relay, pre)


OUTSOURCED: dict[str, Workload] = {
    "outsourced_meta": _outsourced("meta_analysis"),
    "outsourced_describe": _outsourced("describe"),
    "everyone_meta": _everyone("meta_analysis"),
    "everyone_describe": _everyone("describe"),
}
