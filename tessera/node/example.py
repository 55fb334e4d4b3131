"""A three-organisation consortium on this machine, for the walkthrough, demos and tests.

Three organisations (``alpha``, ``beta``, ``gamma``) each hold synthetic bank transactions and a
synthetic clinical trial; a fourth node is the semi2k dealer (optional: without it, semi2k jobs
make their correlated randomness by oblivious transfer between the parties). :func:`build_consortium` writes
the data, creates every node directory (``tessera node init``), writes the contract with the
terms below (``tessera contract init --node ... --terms ...``), has every party sign it, gives
the analyst ``analyst-1`` a token at ``alpha`` and returns where everything is. The nodes are
then started with ``tessera node start DIR``.

:func:`build_hospitals` is the outsourced variant (#17): ``n`` hospitals, each a node whose
contract role is ``owner`` (it only inputs its trial), and three compute nodes ``c1``-``c3``
(role ``compute``, rep3) that run every job; the analyst's token is at ``c1``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w

from tessera.data.synthetic import (
    BANK_SCHEMA,
    HOSPITAL_SCHEMA,
    bank_transactions,
    hospital_trials,
    many_hospitals,
    vertical_fraud,
)
from tessera.governance.contract import Contract
from tessera.net.identity import Identity
from tessera.node.setup import CONFIG_FILE, add_analyst, init_node, party_entry

__all__ = ["build_consortium", "write_data", "Consortium", "ORGS", "DEALER", "terms", "COMPUTE", "hospital_names",
           "hospital_terms", "write_hospital_data", "build_hospitals"]

ORGS = ("alpha", "beta", "gamma")
DEALER = "trusted_dealer"
ANALYST = "analyst-1"
FRAUD_FEATURES = ["amount", "merchant_risk", "hour", "account_age_days"]
#: the compute nodes of the outsourced (hospitals) example
COMPUTE = ("c1", "c2", "c3")


def terms(orgs: tuple[str, ...] = ORGS, psi_reveal: str = "intersection") -> dict[str, Any]:
    """The consortium's terms: datasets, allowed analyses, analysts, budgets, leakage rules
    (``psi_reveal``: ``intersection``, or ``size`` for vertical jobs over a secret-shared join)."""
    tx = [f"tx_{o}" for o in orgs]
    trial = [f"trial_{o}" for o in orgs]
    datasets = [{"name": f"tx_{o}", "owner": o, "schema": BANK_SCHEMA.model_dump(mode="json", exclude_none=True), "min_rows": 100}
                for o in orgs]
    datasets += [{"name": f"trial_{o}", "owner": o, "schema": HOSPITAL_SCHEMA.model_dump(mode="json", exclude_none=True),
                  "min_rows": 50} for o in orgs]
    # vertically partitioned: alpha's customer features, beta's fraud labels, keyed by customer_id
    datasets += [
        {"name": f"cust_{orgs[0]}", "owner": orgs[0], "key": "customer_id", "min_rows": 100,
         "schema": BANK_SCHEMA.select(FRAUD_FEATURES).model_dump(mode="json", exclude_none=True)},
        {"name": f"fraud_{orgs[1]}", "owner": orgs[1], "key": "customer_id", "min_rows": 100,
         "schema": BANK_SCHEMA.select(["is_fraud"]).model_dump(mode="json", exclude_none=True)},
    ]
    return {
        "datasets": datasets,
        "analyses": [
            {"name": "logistic_regression", "versions": ">=1.0,<2", "datasets": tx,
             "columns": [*FRAUD_FEATURES, "is_fraud"], "protocols": ["rep3", "semi2k"],
             "recipients": [ANALYST, orgs[0]], "max_iterations": 25, "min_rows_per_party": 100},
            {"name": "logistic_regression", "versions": ">=1.0,<2", "datasets": [f"cust_{orgs[0]}", f"fraud_{orgs[1]}"],
             "columns": [*FRAUD_FEATURES, "is_fraud"], "protocols": ["semi2k"], "recipients": [ANALYST],
             "max_iterations": 25, "min_rows_per_party": 100},
            {"name": "meta_analysis", "versions": ">=1.0,<2", "datasets": trial,
             "columns": ["outcome", "treatment"], "protocols": ["rep3", "semi2k"], "recipients": [ANALYST],
             "min_group_size": 10},
            {"name": "describe", "versions": ">=1.0,<2", "datasets": tx, "columns": ["amount", "merchant_risk"],
             "protocols": ["rep3", "semi2k"], "recipients": [ANALYST]},
            {"name": "dp_logistic_regression", "versions": ">=1.0,<2", "datasets": tx,
             "columns": [*FRAUD_FEATURES, "is_fraud"], "protocols": ["rep3", "semi2k"], "recipients": [ANALYST],
             "require_dp": True, "max_epsilon": 1.0, "max_iterations": 25},
            {"name": "dp_describe", "versions": ">=1.0,<2", "datasets": tx, "columns": ["amount"],
             "protocols": ["rep3", "semi2k"], "recipients": [ANALYST], "require_dp": True, "max_epsilon": 1.0},
        ],
        "analysts": [{"id": ANALYST, "name": "Consortium analyst"}],
        "budgets": [{"dataset": d, "epsilon": 3.0, "delta": 1e-6} for d in tx],
        # intersection: vertical jobs' PSI lets each owner learn which of its rows are common;
        # size: only their number, the joined rows stay secret-shared (aligned mode)
        "leakage": {"psi_reveal": psi_reveal},
    }


@dataclass
class Consortium:
    root: Path
    nodes: dict[str, Path]
    analyst_profile: Path
    admin_profiles: dict[str, Path]
    contract: Contract
    data: dict[str, dict[str, Path]] = field(default_factory=dict)

    def start_commands(self) -> list[str]:
        return [f"tessera node start {d}" for d in self.nodes.values()]


def write_data(root: str | Path, rows: int = 30_000, seed: int = 7) -> dict[str, dict[str, Path]]:
    """Each organisation's synthetic transactions and trial as CSV files under ``root/data``,
    and the consortium's terms as ``root/terms.toml`` (for ``tessera contract init --terms``)."""
    root = Path(root)
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    frames, _, _ = bank_transactions(rows, banks=ORGS, seed=seed)
    trials, _, _ = hospital_trials({o: n for o, n in zip(ORGS, (1800, 1200, 700))})
    data: dict[str, dict[str, Path]] = {}
    for o in ORGS:
        data[o] = {"tx": data_dir / f"tx_{o}.csv", "trial": data_dir / f"trial_{o}.csv"}
        frames[o].to_csv(data[o]["tx"], index=False)
        trials[o].to_csv(data[o]["trial"], index=False)
    vertical, _, _, _ = vertical_fraud(max(rows // 3, 1000), seed=seed)
    data[ORGS[0]]["cust"] = data_dir / f"cust_{ORGS[0]}.csv"
    data[ORGS[1]]["fraud"] = data_dir / f"fraud_{ORGS[1]}.csv"
    vertical["bank_a"].to_csv(data[ORGS[0]]["cust"], index=False)
    vertical["bank_b"].to_csv(data[ORGS[1]]["fraud"], index=False)
    (root / "terms.toml").write_text(tomli_w.dumps(terms()), encoding="utf-8")
    return data


def build_consortium(root: str | Path, *, rows: int = 30_000, base_port: int = 18400,
                     approval: dict[str, str] | None = None, seed: int = 7,
                     psi_reveal: str = "intersection", dealer: bool = True) -> Consortium:
    """Write everything for a local consortium under ``root`` (see the module docstring).
    Node ``i`` serves its API on ``base_port + 40 i`` and runs MPC on the 32 ports after it.
    ``dealer=False``: no dealer node; semi2k jobs then make their correlations by OT."""
    root = Path(root)
    data = write_data(root, rows, seed)
    nodes: dict[str, Path] = {}
    admin: dict[str, Path] = {}
    for i, name in enumerate([*ORGS, DEALER] if dealer else ORGS):
        d = root / name
        if d.exists():
            shutil.rmtree(d)
        port = base_port + 40 * i
        datasets = {} if name == DEALER else {f"tx_{name}": {"path": str(data[name]["tx"])},
                                              f"trial_{name}": {"path": str(data[name]["trial"])}}
        if name == ORGS[0]:
            datasets[f"cust_{name}"] = {"path": str(data[name]["cust"])}
        if name == ORGS[1]:
            datasets[f"fraud_{name}"] = {"path": str(data[name]["fraud"])}
        init_node(d, name, api_port=port, mpc_ports=(port + 1, port + 32), role="dealer" if name == DEALER else "party",
                  datasets=datasets, approval=(approval or {}).get(name, "auto"))
        nodes[name] = d
        admin[name] = d / "admin.toml"
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    contract = Contract.model_validate({
        "contract_id": "consortium-2026", "title": "Fraud model and trial meta-analysis",
        "not_before": now - dt.timedelta(minutes=5), "not_after": now + dt.timedelta(days=365),
        "parties": [party_entry(d).model_dump() for d in nodes.values()], **terms(psi_reveal=psi_reveal),
    })
    for name, d in nodes.items():
        contract = contract.signed_by(Identity.load(d / "keys", name))
    for d in nodes.values():
        contract.save(d / "contract.toml")
    profile = root / f"{ANALYST}.toml"
    add_analyst(nodes[ORGS[0]], ANALYST, profile)
    assert (nodes[ORGS[0]] / CONFIG_FILE).exists()
    return Consortium(root, nodes, profile, admin, contract, data)


def hospital_names(n: int) -> list[str]:
    """``hospital_01`` ... ``hospital_NN`` (as :func:`tessera.data.synthetic.many_hospitals` names them)."""
    return [f"hospital_{i + 1:02d}" for i in range(n)]


#: the vertical split of the hospitals example: the first hospital's lab measures a biomarker of
#: patients whose follow-up outcome the second records, keyed by ``patient_id``
LAB_SCHEMA = HOSPITAL_SCHEMA.select(["biomarker_1"])
FOLLOWUP_SCHEMA = HOSPITAL_SCHEMA.select(["outcome"])


def hospital_terms(hospitals: list[str]) -> dict[str, Any]:
    """The terms of the outsourced consortium: one trial dataset per hospital, a rep3
    meta-analysis (and a DP summary, charged to each hospital's budget) for ``analyst-1``; with
    two hospitals or more, the first one's lab values and the second one's follow-ups, keyed by
    ``patient_id``, for a vertical linear regression."""
    trials = [f"trial_{h}" for h in hospitals]
    schema = HOSPITAL_SCHEMA.model_dump(mode="json", exclude_none=True)
    split = []
    if len(hospitals) >= 2:
        lab, follow = f"lab_{hospitals[0]}", f"followup_{hospitals[1]}"
        split = [{"name": lab, "owner": hospitals[0], "key": "patient_id", "min_rows": 20,
                  "schema": LAB_SCHEMA.model_dump(mode="json", exclude_none=True)},
                 {"name": follow, "owner": hospitals[1], "key": "patient_id", "min_rows": 20,
                  "schema": FOLLOWUP_SCHEMA.model_dump(mode="json", exclude_none=True)}]
    vertical = ([{"name": "linear_regression", "versions": ">=1.0,<2", "datasets": [lab, follow],
                  "columns": ["biomarker_1", "outcome"], "protocols": ["rep3"], "recipients": [ANALYST]}]
                if split else [])
    return {
        "datasets": [{"name": f"trial_{h}", "owner": h, "schema": schema, "min_rows": 20} for h in hospitals] + split,
        "analyses": [
            *vertical,
            {"name": "meta_analysis", "versions": ">=1.0,<2", "datasets": trials, "columns": ["outcome", "treatment"],
             "protocols": ["rep3"], "recipients": [ANALYST], "min_group_size": 10},
            {"name": "dp_describe", "versions": ">=1.0,<2", "datasets": trials, "columns": ["outcome"],
             "protocols": ["rep3"], "recipients": [ANALYST], "require_dp": True, "max_epsilon": 1.0},
        ],
        "analysts": [{"id": ANALYST, "name": "Consortium analyst"}],
        "budgets": [{"dataset": d, "epsilon": 3.0, "delta": 1e-6} for d in trials],
        # the vertical regression's PSI: each of the two hospitals learns which of its patients are common
        "leakage": {"psi_reveal": "intersection"},
    }


def hospital_split(seed: int = 11, patients: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The vertical split: a lab's ``biomarker_1`` of ``patients`` patients, and a follow-up
    clinic's ``outcome`` of three quarters of them plus patients the lab never saw (rows in
    unrelated orders); ``outcome = 80 + 6 biomarker_1 + noise`` on the common patients."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"p-{i:05d}" for i in range(patients)])
    marker = np.clip(rng.normal(0.0, 3.0, patients), -10.0, 10.0)
    common = rng.permutation(patients)[: 3 * patients // 4]
    outcome = np.clip(80.0 + 6.0 * marker[common] + rng.normal(0.0, 12.0, len(common)), 0.0, 300.0)
    others = [f"q-{i:05d}" for i in range(patients // 5)]
    follow = pd.DataFrame({"patient_id": [*ids[common], *others],
                           "outcome": [*outcome, *np.clip(rng.normal(90.0, 15.0, len(others)), 0.0, 300.0)]})
    lab = pd.DataFrame({"patient_id": ids, "biomarker_1": marker}).sample(frac=1.0, random_state=seed)
    return lab, follow.sample(frac=1.0, random_state=seed + 1)


def write_hospital_data(root: str | Path, hospitals: int = 30, seed: int = 11) -> dict[str, Path]:
    """Each hospital's synthetic trial (:func:`~tessera.data.synthetic.many_hospitals`) as
    ``root/data/trial_hospital_NN.csv``, and the terms as ``root/terms.toml``; returns hospital -> file."""
    root = Path(root)
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    frames, _, _ = many_hospitals(hospitals, seed=seed)
    files = {}
    for h, df in frames.items():
        files[h] = data_dir / f"trial_{h}.csv"
        df.to_csv(files[h], index=False)
    if hospitals >= 2:
        lab, follow = hospital_split(seed)
        lab.to_csv(data_dir / f"lab_{hospital_names(1)[0]}.csv", index=False)
        follow.to_csv(data_dir / f"followup_{hospital_names(2)[1]}.csv", index=False)
    (root / "terms.toml").write_text(tomli_w.dumps(hospital_terms(list(frames))), encoding="utf-8")
    return files


def build_hospitals(root: str | Path, *, hospitals: int = 30, base_port: int = 18400, seed: int = 11) -> Consortium:
    """The outsourced consortium under ``root``: ``hospitals`` owner nodes and the compute nodes
    :data:`COMPUTE`, the contract signed by all, ``analyst-1``'s profile at ``c1``. Node ``i``
    (the compute nodes first) serves its API on ``base_port + 10 i`` and runs MPC on the 8 ports
    after it."""
    root = Path(root)
    files = write_hospital_data(root, hospitals, seed)
    nodes: dict[str, Path] = {}
    for i, name in enumerate([*COMPUTE, *files]):
        d = root / name
        if d.exists():
            shutil.rmtree(d)
        port = base_port + 10 * i
        datasets = {f"trial_{name}": {"path": str(files[name])}} if name in files else {}
        for kind in ("lab", "followup"):  # the vertical split's halves (first two hospitals)
            if (root / "data" / f"{kind}_{name}.csv").exists():
                datasets[f"{kind}_{name}"] = {"path": str(root / "data" / f"{kind}_{name}.csv")}
        init_node(d, name, api_port=port, mpc_ports=(port + 1, port + 8), role="owner" if name in files else "compute",
                  datasets=datasets)
        nodes[name] = d
    contract = _signed_contract("hospitals-2026", "Thirty hospitals through three compute nodes", nodes,
                                hospital_terms(list(files)))
    profile = root / f"{ANALYST}.toml"
    add_analyst(nodes[COMPUTE[0]], ANALYST, profile)
    return Consortium(root, nodes, profile, {n: d / "admin.toml" for n, d in nodes.items()}, contract,
                      {h: {"trial": f, **{k: root / "data" / f"{k}_{h}.csv" for k in ("lab", "followup")
                                          if (root / "data" / f"{k}_{h}.csv").exists()}}
                       for h, f in files.items()})


def _signed_contract(contract_id: str, title: str, nodes: dict[str, Path], terms: dict[str, Any]) -> Contract:
    """The contract of ``nodes`` (their party.toml entries) under ``terms``, signed by every node
    and copied into each node directory."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    contract = Contract.model_validate({
        "contract_id": contract_id, "title": title,
        "not_before": now - dt.timedelta(minutes=5), "not_after": now + dt.timedelta(days=365),
        "parties": [party_entry(d).model_dump() for d in nodes.values()], **terms,
    })
    for name, d in nodes.items():
        contract = contract.signed_by(Identity.load(d / "keys", name))
    for d in nodes.values():
        contract.save(d / "contract.toml")
    return contract
