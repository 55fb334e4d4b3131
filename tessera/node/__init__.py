"""The node service: an organisation's long-lived node (HTTPS API, job lifecycle, MPC parties),
and the analyst's client.

* :mod:`tessera.node.config` — ``node.toml``; :mod:`tessera.node.setup` — node directories, profiles;
* :mod:`tessera.node.states` — job states, the one transition table, progress fractions;
* :mod:`tessera.node.store` — jobs (typed :class:`~tessera.node.store.Job` records) and events in SQLite;
* :mod:`tessera.node.coordinator` — agreeing on a job with the other nodes (signed peer messages);
* :mod:`tessera.node.decisions` — this node's decision: policy, and the one planning of the job;
* :mod:`tessera.node.runner` — ports, the party process of each running job, outcomes, budget sweep;
* :mod:`tessera.node.datasources` — the node's datasets, read through :mod:`tessera.data`;
* :mod:`tessera.node.peers` — signed node-to-node messages, the pinned HTTPS client;
* :mod:`tessera.node.service` — the :class:`~tessera.node.service.Node`, which wires the parts;
* :mod:`tessera.node.api` — the FastAPI routes; :mod:`tessera.node.server` — uvicorn, shutdown;
* :mod:`tessera.node.metrics`, :mod:`tessera.node.logs` — Prometheus metrics, JSON logs;
* :mod:`tessera.node.client` — :class:`~tessera.node.client.Client` for analysts and owners;
* :mod:`tessera.node.example` — a local three-organisation consortium (walkthrough, tests).
"""
