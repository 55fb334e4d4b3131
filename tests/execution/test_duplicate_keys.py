"""#15.16: duplicated join keys in a vertical job are refused (default) or, where the contract
says ``duplicate_keys = "first"``, the first row of each is used; the plan says which."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tessera.data.schema import Column, Schema
from tessera.errors import DataError
from tessera.jobs.local import run_local
from tessera.jobs.model import RowBounds

SCHEMA = Schema(columns=(Column(name="x", type="float", min=-100.0, max=100.0),
                         Column(name="y", type="float", min=-100.0, max=100.0)))


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)
    a = pd.DataFrame({"id": [f"K{i}" for i in range(200)], "x": rng.uniform(-50, 50, 200)})
    ids = [f"k{i}" for i in range(50, 250)]
    # three keys repeat with conflicting values: 'K60 ' and 'k60' normalise alike, and so on
    b = pd.DataFrame({"id": [*ids, "K60 ", "k61", "k61", "k62"], "y": np.r_[rng.uniform(-50, 50, 200), 99, 98, 97, 96]})
    return a, b


@pytest.mark.parametrize("mode", ["intersection", "aligned"])
def test_duplicated_join_keys_are_refused_by_default_naming_the_dataset_and_the_count(mode):
    a, b = frames()
    bounds = {"a": RowBounds(dataset="cust_a"), "b": RowBounds(dataset="labels_b")}
    with pytest.raises(DataError) as e:
        run_local("describe", {"a": a, "b": b}, SCHEMA, runtime="threads", partition="vertical", psi_mode=mode,
                  join_key="id", columns=["x", "y"], row_bounds=bounds)
    assert str(e.value).startswith("dataset 'labels_b': 3 join-key values repeat (7 rows in all); the contract "
                                   "refuses duplicate join keys (duplicate_keys = 'refuse')")
    assert "k6" not in str(e.value).lower()  # counts, never the keys


def test_first_uses_the_first_row_of_each_key_and_the_plan_says_so():
    a, b = frames()
    res = run_local("describe", {"a": a, "b": b}, SCHEMA, runtime="threads", partition="vertical",
                    psi_mode="intersection", join_key="id", columns=["x", "y"], duplicate_keys="first")
    first = b.assign(id=b.id.str.strip().str.lower()).drop_duplicates("id", keep="first")
    join = a.assign(id=a.id.str.lower()).merge(first, on="id")
    assert res["count"] == len(join) == 150
    assert res["y"]["mean"] == pytest.approx(join.y.mean(), abs=1e-6)
    assert ("duplicate join keys (after normalisation): a, b: the first row of each repeated join-key value is "
            "used, the later rows are left out") in res.plan_text


def test_the_default_plan_says_duplicates_are_refused():
    a, b = frames()
    res = run_local("describe", {"a": a, "b": b.iloc[:200]}, SCHEMA, runtime="threads", partition="vertical",
                    psi_mode="intersection", join_key="id", columns=["x", "y"])
    assert res["count"] == 150
    assert "duplicate join keys (after normalisation): a, b: the job is refused if a join-key value repeats" \
        in res.plan_text


def test_the_contract_chooses_per_dataset(tmp_path):
    from tessera.governance.contract import DatasetSpec
    from tessera.governance.job import JobSpec
    from tessera.jobs.contract import request_for
    from tessera.jobs.planner import plan_job
    from tessera.net.identity import Identity
    from tests.governance.conftest import NAMES, make_contract

    ids = {n: Identity.create(n, tmp_path) for n in NAMES}
    xs, ys = SCHEMA.select(["x"]), SCHEMA.select(["y"])
    contract = make_contract(ids, datasets=[
        DatasetSpec(name="f", owner="bank_a", key="id", schema=xs),
        DatasetSpec(name="l", owner="bank_b", key="id", schema=ys, duplicate_keys="first"),
        DatasetSpec(name="m", owner="bank_c", key="id", schema=xs)],
        analyses=[], budgets=[], leakage={"psi_reveal": "intersection"})
    assert "duplicate_keys" not in contract.model_dump(exclude_none=True)["datasets"][0]  # unset: not in the hash
    spec = JobSpec(analysis="describe", version="1.0", datasets=["f", "l", "m"], columns=["x", "y"],
                   params={"columns": ["x", "y"]}, protocol="rep3", recipients=["analyst-1"], analyst="analyst-1",
                   partition="vertical", join_key="id")
    job = plan_job(request_for(contract, spec, "bank_a", "j1"))
    assert job.psi is not None and job.psi.keep_first == ["bank_b"]
    assert "bank_a, bank_c: the job is refused if a join-key value repeats" in job.plan_text
    assert "bank_b: the first row of each repeated join-key value is used" in job.plan_text
