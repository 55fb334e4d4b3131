"""Jobs: the typed job every party runs, its planner, its party process and its report.

* :mod:`tessera.jobs.model` — :class:`PartyJob` (versioned: analysis, parameters, schema, roles,
  holders, PSI step, precision, DP charge, plan), :class:`JobReport`;
* :mod:`tessera.jobs.planner` — :func:`plan_job`, the one planner;
* :mod:`tessera.jobs.contract` — the planner's request for a job under a contract (nodes);
* :mod:`tessera.jobs.party` — :func:`run_party_job`, the one party entry point
  (``python -m tessera.jobs.party LAUNCH.json``);
* :mod:`tessera.jobs.budget` — budget accounting as a hook on the session's release;
* :mod:`tessera.jobs.local` — :func:`run_local`.
"""
