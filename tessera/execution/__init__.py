"""The execution steps of one party's side of a job (see docs/architecture.md, "How a job flows").

* :mod:`tessera.execution.steps` — the analysis's plan (:func:`~tessera.execution.steps.plan_analysis`,
  called by the job planner only), the checked load, the local stage and the secure stage;
* :mod:`tessera.execution.psi` — what each PSI mode of a vertical job means, and the PSI
  alignment step;
* :mod:`tessera.execution.aligned` — the secret-shared join of PSI ``aligned`` mode.

The steps know analyses, sessions and the data layer; they know nothing of jobs, nodes, ledgers
or processes. :mod:`tessera.jobs` composes them from a typed job.
"""
