"""Two organisations, no third machine: a semi2k job between two nodes under a contract that
names no dealer runs with OT preprocessing, end to end over the nodes' real processes."""

from __future__ import annotations

import pandas as pd
import pytest

from tessera.node.example import DEALER

pytestmark = pytest.mark.slow

MEAN_TOL = 2 * 5000 / 2**16  # two steps of the fixed-point resolution of amount in [0, 10000]


def test_a_two_party_job_runs_with_no_dealer_in_the_contract(tmp_path):
    from tessera.node.example import build_consortium
    from tests.node.conftest import Cluster, free_block

    cons = build_consortium(tmp_path / "consortium", rows=600, base_port=free_block(), dealer=False)
    cluster = Cluster(cons)
    try:
        for name in ("alpha", "beta"):  # the job's two organisations; nobody else runs
            cluster.start(name)
        assert DEALER not in cluster.nodes
        assert all(p.role == "party" for p in cluster.cons.contract.parties)
        analyst = cluster.analyst()
        job = {"analysis": "describe", "version": "1.0", "datasets": ["tx_alpha", "tx_beta"], "columns": ["amount"],
               "params": {"columns": ["amount"]}, "protocol": "semi2k", "recipients": ["analyst-1"]}
        final = analyst.wait(analyst.submit(job)["id"], timeout=240)
        assert final["state"] == "released", final.get("reasons")
        out = analyst.result(final["id"])["outputs"]
        rows = pd.concat([pd.read_csv(cluster.cons.data[o]["tx"]) for o in ("alpha", "beta")], ignore_index=True)
        assert out["count"] == len(rows)
        assert abs(out["amount"]["mean"] - rows["amount"].mean()) < MEAN_TOL
    finally:
        cluster.stop_all()
