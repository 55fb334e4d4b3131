"""Policy: may this node take part in this job? Every reason for a denial, not just the first.

Each node decides on its own, from the contract it signed, the job, and its own state (row
counts of its datasets, remaining privacy budget); a node refuses what its contract does not
allow even if every other node accepted it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from tessera.analytics.glm_hybrid import HYBRID_ANALYSES, ITERATES_LEAKAGE
from tessera.execution.psi import MODE_FOR_LEAKAGE
from tessera.governance.contract import Contract
from tessera.governance.job import JobSpec

__all__ = ["Decision", "NodeState", "check", "EXTREMES_RULE", "EXTREME_PARAMS", "ITERATES_RULE"]

#: Parameters that set a minimum group, bin or cell size in the library's analyses.
GROUP_PARAMS = ("min_group_rows", "min_bin_count", "min_arm_rows", "min_cell_count")
ITERATION_PARAMS = ("iterations", "max_iterations", "max_iter")
#: The contract's leakage rule on releasing exact extremes (a column's min and max are single
#: individuals' values): ``"none"`` (the default) or ``"exact"``.
EXTREMES_RULE = "extremes"
_UNSET = object()
#: Parameters that ask an analysis to release exact extremes (``describe``).
EXTREME_PARAMS = ("extremes",)
#: The contract's leakage rule on revealing an iterative model's iterates to the data owners (the
#: hybrid GLMs, :data:`tessera.analytics.glm_hybrid.HYBRID_ANALYSES`): ``"none"`` (the default) or
#: ``"owners"``.
ITERATES_RULE = "iterates"


@dataclass
class NodeState:
    """What the deciding node knows about itself."""

    party: str
    rows: Mapping[str, int] = field(default_factory=dict)
    remaining_budget: Callable[[str], float] | None = None


@dataclass
class Decision:
    allowed: bool
    reasons: list[str]


def check(contract: Contract, job: JobSpec, state: NodeState, now: dt.datetime | None = None) -> Decision:
    """Allow or deny ``job`` at the node ``state.party``, with every reason for a denial."""
    reasons = [f"contract: {p}" for p in contract.problems(now)]
    if job.analyst not in {a.id for a in contract.analysts}:
        reasons.append(f"analyst {job.analyst!r} is not named in the contract")
    rules = [r for r in contract.analyses if r.name == job.analysis]
    if not rules:
        reasons.append(f"analysis {job.analysis!r} is not allowed by the contract")
        return Decision(False, reasons)
    try:
        version = Version(job.version)
        rules_v = [r for r in rules if version in SpecifierSet(r.versions)]
    except (InvalidVersion, InvalidSpecifier):
        rules_v = []
    if not rules_v:
        reasons.append(f"version {job.version} of {job.analysis!r} is outside the allowed "
                       f"{' or '.join(r.versions for r in rules)}")
        return Decision(False, reasons)
    # several rules may name the analysis (e.g. on different datasets): take one that covers them
    rule = next((r for r in rules_v if set(job.datasets) <= set(r.datasets)), rules_v[0])
    for d in job.datasets:
        spec = contract.dataset(d)
        if spec is None:
            reasons.append(f"dataset {d!r} is not in the contract")
            continue
        if d not in rule.datasets:
            reasons.append(f"dataset {d!r} is not allowed for {job.analysis!r}")
        if job.partition == "horizontal":
            unknown = [c for c in job.columns if c not in spec.schema_.names]
            if unknown:
                reasons.append(f"columns {unknown} are not in dataset {d!r}")
        elif job.join_key is None or spec.key != job.join_key:
            reasons.append(f"dataset {d!r} has no join key {job.join_key!r} in the contract (its key: {spec.key})")
        if spec.owner == state.party and d in state.rows and state.rows[d] < rule.min_rows_per_party:
            reasons.append(f"dataset {d!r} has fewer rows than the minimum of {rule.min_rows_per_party} per party")
    if job.partition == "vertical":
        held = {c for d in job.datasets if (spec := contract.dataset(d)) for c in spec.schema_.names}
        unknown = [c for c in job.columns if c not in held]
        if unknown:
            reasons.append(f"columns {unknown} are in none of the datasets {job.datasets}")
        if contract.leakage.get("psi_reveal", "size") not in MODE_FOR_LEAKAGE:
            reasons.append("a vertical job aligns rows by PSI, which reveals at least the number of common "
                           f"identifiers; the contract's leakage rule psi_reveal={contract.leakage['psi_reveal']!r} "
                           "allows neither 'size' nor 'intersection'")
    forbidden = [c for c in job.columns if c not in rule.columns]
    if forbidden:
        reasons.append(f"columns {forbidden} are not allowed for {job.analysis!r}")
    if job.protocol not in rule.protocols:
        reasons.append(f"protocol {job.protocol!r} is not allowed (allowed: {rule.protocols})")
    pre = contract.preprocessing_for(job.protocol, job.preprocessing)
    if rule.preprocessing is not None and job.protocol == "semi2k" and pre not in rule.preprocessing:
        reasons.append(f"preprocessing {pre!r} is not allowed for {job.analysis!r} (allowed: {rule.preprocessing})")
    bad_recipients = [r for r in job.recipients if r not in rule.recipients]
    if bad_recipients:
        reasons.append(f"recipients {bad_recipients} may not receive {job.analysis!r} results")
    if rule.max_iterations is not None:
        for key in ITERATION_PARAMS:
            it = job.params.get(key)
            if it is None:
                continue
            if not isinstance(it, (int, float)) or isinstance(it, bool):
                reasons.append(f"{key} must be a number to be checked against the contract's maximum of "
                               f"{rule.max_iterations} iterations, not {type(it).__name__}")
            elif it > rule.max_iterations:
                reasons.append(f"{key}={it} exceeds the maximum of {rule.max_iterations} iterations")
    if rule.min_group_size:
        sizes = {k: job.params[k] for k in GROUP_PARAMS if k in job.params}
        if not sizes:
            reasons.append(f"the job sets no minimum group size; the contract requires {rule.min_group_size}")
        for key, v in sizes.items():
            if not isinstance(v, (int, float)) or v < rule.min_group_size:
                reasons.append(f"{key}={v} is below the contract's minimum group size {rule.min_group_size}")
    for key, fixed in rule.params.items():
        given = job.params.get(key, _UNSET)
        if given is _UNSET:
            reasons.append(f"the contract fixes {key} = {fixed!r} for {job.analysis!r}; the job leaves it to the "
                           "analysis's default")
        elif type(given) is not type(fixed) or given != fixed:
            reasons.append(f"{key}={given!r}: the contract fixes {key} = {fixed!r} for {job.analysis!r}")
    extremes_rule = contract.leakage.get(EXTREMES_RULE, "none")
    for key in EXTREME_PARAMS:
        asked = job.params.get(key, False)
        if asked is not False and extremes_rule != "exact":
            reasons.append(f"{key}={asked!r} releases each column's exact min and max (single individuals' values); "
                           f"the contract's leakage rule {EXTREMES_RULE}={extremes_rule!r} does not allow it "
                           f"(it takes {EXTREMES_RULE} = 'exact')")
    iterates_rule = contract.leakage.get(ITERATES_RULE, "none")
    if job.analysis in HYBRID_ANALYSES and iterates_rule != ITERATES_LEAKAGE:
        reasons.append(f"{job.analysis} reveals its Newton iterates to every data owner; the contract's leakage rule "
                       f"{ITERATES_RULE}={iterates_rule!r} does not allow it (it takes {ITERATES_RULE} = "
                       f"{ITERATES_LEAKAGE!r})")
    if rule.max_outputs is not None and len(job.columns) > rule.max_outputs:
        reasons.append(f"{len(job.columns)} output columns exceed the maximum of {rule.max_outputs}")
    if rule.require_dp and job.dp is None:
        reasons.append(f"{job.analysis!r} must use differential privacy under this contract")
    if job.dp is not None:
        if rule.max_epsilon is not None and job.dp.epsilon > rule.max_epsilon:
            reasons.append(f"epsilon {job.dp.epsilon} exceeds the per-job maximum {rule.max_epsilon}")
        for d in job.datasets:
            spec = contract.dataset(d)
            if spec is None or spec.owner != state.party:
                continue
            budget = contract.budget(d)
            if budget is None:
                reasons.append(f"dataset {d!r} has no privacy budget in the contract")
                continue
            left = state.remaining_budget(d) if state.remaining_budget else budget.epsilon
            if job.dp.epsilon > left + 1e-12:
                reasons.append(f"budget exceeded for dataset {d!r}: requested epsilon {job.dp.epsilon}, {left:g} left")
    return Decision(not reasons, reasons)
