"""The node's Prometheus metrics: jobs by state, job latency, MPC bytes and rounds, budgets.

Each node has its own registry (several nodes may share a process in tests). Gauges that mirror
the store (jobs by state, budget remaining) are read when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["NodeMetrics"]


class _StoreCollector(Collector):
    def __init__(self, node: str, counts: Callable[[], Mapping[str, int]],
                 budgets: Callable[[], Mapping[str, float]], states: tuple[str, ...]) -> None:
        self.node, self.counts, self.budgets, self.states = node, counts, budgets, states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("tessera_jobs", "Jobs this node knows, by state", labels=["node", "state"])
        counts = self.counts()
        for s in self.states:
            jobs.add_metric([self.node, s], float(counts.get(s, 0)))
        yield jobs
        budget = GaugeMetricFamily("tessera_budget_epsilon_remaining",
                                   "Privacy budget (epsilon) left per dataset of this node", labels=["node", "dataset"])
        for d, eps in self.budgets().items():
            budget.add_metric([self.node, d], float(eps))
        yield budget


class NodeMetrics:
    def __init__(self, node: str, counts: Callable[[], Mapping[str, int]],
                 budgets: Callable[[], Mapping[str, float]], states: tuple[str, ...]) -> None:
        self.node = node
        self.registry = CollectorRegistry()
        self.registry.register(_StoreCollector(node, counts, budgets, states))
        self.job_seconds = Histogram("tessera_job_seconds", "Job latency from submission to its final state",
                                     ["node", "state"], registry=self.registry,
                                     buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800))
        self.bytes_sent = Counter("tessera_mpc_bytes_sent", "Bytes this node sent in MPC sessions",
                                  ["node"], registry=self.registry)
        self.rounds = Counter("tessera_mpc_rounds", "Communication rounds of this node's MPC sessions",
                              ["node"], registry=self.registry)
        self.jobs_finished = Counter("tessera_jobs_finished", "Jobs that reached a final state here",
                                     ["node", "state"], registry=self.registry)
        self.peer_messages = Counter("tessera_peer_messages", "Signed messages from peer nodes",
                                     ["node", "kind", "outcome"], registry=self.registry)
        self.jobs_planned = Counter("tessera_jobs_planned", "Calls of the job planner at this node (one per job)",
                                    ["node"], registry=self.registry)
        self.http_denied = Counter("tessera_http_unauthorized", "API requests refused for authentication",
                                   ["node"], registry=self.registry)

    def finished(self, state: str, seconds: float) -> None:
        self.job_seconds.labels(self.node, state).observe(seconds)
        self.jobs_finished.labels(self.node, state).inc()

    def comm(self, bytes_sent: int, rounds: int) -> None:
        self.bytes_sent.labels(self.node).inc(bytes_sent)
        self.rounds.labels(self.node).inc(rounds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
