"""The node service: an organisation's long-lived node (HTTPS API, job lifecycle, MPC parties),
and the analyst's client.

* :mod:`tessera.node.config` — ``node.toml``; :mod:`tessera.node.setup` — node directories, profiles;
* :mod:`tessera.node.store` — jobs and events in SQLite; :mod:`tessera.node.jobs` — a job's parties and plan;
* :mod:`tessera.node.peers` — signed node-to-node messages, the pinned HTTPS client;
* :mod:`tessera.node.service` — the :class:`~tessera.node.service.Node` and the job lifecycle;
* :mod:`tessera.node.api` — the FastAPI routes; :mod:`tessera.node.server` — uvicorn, shutdown;
* :mod:`tessera.node.metrics`, :mod:`tessera.node.logs` — Prometheus metrics, JSON logs;
* :mod:`tessera.node.client` — :class:`~tessera.node.client.Client` for analysts and owners;
* :mod:`tessera.node.example` — a local three-organisation consortium (walkthrough, tests).
"""
