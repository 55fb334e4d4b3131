"""Analyst-only results, sealed (#15): real node processes on loopback, an analyst whose contract
entry names an X25519 box key. Its describe jobs (rep3 and semi2k) reach it with the right values
while no node's files, logs or API answers hold them; a wrong key opens nothing; an analysis that
cannot seal is denied, naming why. A describe job with a data owner among its recipients (not
sealed) is the positive control: the same search finds its values at that owner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tessera.errors import SealedResultError
from tessera.jobs.sealed import new_box_key
from tessera.net.identity import Identity
from tessera.node.example import ANALYST, DEALER, ORGS, build_consortium
from tessera.node.peers import HTTPError, PinnedHTTPS, seal
from tests.node.conftest import Cluster, free_block

pytestmark = pytest.mark.slow

KEY = new_box_key()
TX = [f"tx_{o}" for o in ORGS]
COLUMNS = ["amount", "merchant_risk"]


def describe(protocol: str, recipients: list[str]) -> dict[str, Any]:
    return {"analysis": "describe", "version": "1.0", "datasets": TX, "columns": COLUMNS,
            "params": {"columns": COLUMNS}, "protocol": protocol, "recipients": recipients}


@pytest.fixture(scope="module")
def sealed_cluster(tmp_path_factory: pytest.TempPathFactory):
    """The example consortium, its analyst with a box key in the (re-signed) contract, and describe
    allowed to alpha too (for the unsealed positive control)."""
    cons = build_consortium(tmp_path_factory.mktemp("sealed"), rows=3000, base_port=free_block())
    raw = cons.contract.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["analysts"] = [{**a, "box_key": KEY.public} if a["id"] == ANALYST else a for a in raw["analysts"]]
    for rule in raw["analyses"]:
        if rule["name"] == "describe":
            rule["recipients"] = [ANALYST, ORGS[0]]
    raw["signatures"] = []
    contract = type(cons.contract).model_validate(raw)
    for name, d in cons.nodes.items():
        contract = contract.signed_by(Identity.load(d / "keys", name))
    for d in cons.nodes.values():
        contract.save(d / "contract.toml")
    cons.contract = contract
    cluster = Cluster(cons)
    cluster.start_all()
    try:
        yield cluster
    finally:
        cluster.stop_all()


def plain_describe(cluster: Cluster) -> pd.DataFrame:
    tx = pd.concat([pd.read_csv(cluster.cons.data[o]["tx"]) for o in ORGS], ignore_index=True)
    return tx[COLUMNS]


def forms(value: float) -> list[str]:
    """How a released number would be written down: in full (JSON, repr) and to 7 digits."""
    return sorted({repr(float(value)), f"{value:.7g}", f"{value:.10g}"})


def released_numbers(outputs: dict[str, Any]) -> list[str]:
    """The forms of every released statistic but the count (which every party learns)."""
    return [f for c in COLUMNS for stat in ("sum", "mean", "var", "std") for f in forms(outputs[c][stat])]


def files_with(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """Every file under ``root`` (stores, WAL files, job directories, logs, configs) containing
    any of ``needles``, with the needles found."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n for n in needles if n.encode() in data]
            if hits:
                found[str(path.relative_to(root))] = hits
    return found


def test_sealed_describe_reaches_only_the_analyst(sealed_cluster: Cluster) -> None:
    cluster = sealed_cluster
    analyst = cluster.analyst()
    ids = {p: analyst.submit(describe(p, [ANALYST]))["id"] for p in ("rep3", "semi2k")}
    for job_id in ids.values():
        done = analyst.wait(job_id, timeout=300)
        assert done["state"] == "released", done["reasons"]
    rows = plain_describe(cluster)
    got = {}
    for protocol, job_id in ids.items():
        res = analyst.result(job_id, box_key=KEY)
        out = res["outputs"]
        assert out["count"] == len(rows)
        for c in COLUMNS:
            np.testing.assert_allclose(out[c]["mean"], rows[c].mean(), rtol=1e-9)
            np.testing.assert_allclose(out[c]["sum"], rows[c].sum(), rtol=1e-9)
            np.testing.assert_allclose(out[c]["var"], rows[c].var(ddof=1), rtol=1e-6)
            np.testing.assert_allclose(out[c]["std"], rows[c].std(ddof=1), rtol=1e-6)
        assert set(res["sealed"]) == set(ORGS)  # a box from every compute party, none from the dealer
        got[protocol] = out
        # the plan says where the outputs go
        assert "outputs sealed to analyst-1" in analyst.status(job_id)["plan"]

    # what the analyst's node answers holds boxes, not values
    for protocol, job_id in ids.items():
        raw = json.dumps(analyst.http.request("GET", f"/v1/jobs/{job_id}/result"))
        assert not [n for n in released_numbers(got[protocol]) if n in raw]
        assert "outputs" not in json.loads(raw)

    # no node has the values: not in its store, its job directories (result.json), logs or answers
    needles = released_numbers(got["rep3"]) + released_numbers(got["semi2k"])
    for name in [*ORGS, DEALER]:
        node = cluster.nodes[name]
        assert files_with(node.dir, needles) == {}, name
        admin = cluster.admin(name)
        for protocol, job_id in ids.items():
            if name == DEALER and protocol == "rep3":
                continue  # rep3 needs no dealer
            view = admin.wait(job_id, timeout=60)
            assert view["state"] == "released"
            assert view["has_result"] is False
            assert not [n for n in needles if n in json.dumps(view)]
            with pytest.raises(HTTPError) as e:
                admin.result(job_id)
            assert e.value.status == 403
        assert admin.audit()["verified"] is True
    # the coordinator keeps every party's box for the analyst; a peer keeps only its own
    assert cluster.admin("alpha").status(ids["rep3"])["sealed_shares"] == sorted(ORGS)
    assert cluster.admin("beta").status(ids["rep3"])["sealed_shares"] == ["beta"]
    assert cluster.admin(DEALER).status(ids["semi2k"])["sealed_shares"] == []

    # the positive control (run after the search: it has the same values): the same search finds
    # an unsealed result at the owner that received it, and at no other node
    control = analyst.submit(describe("rep3", [ANALYST, ORGS[0]]))["id"]
    assert analyst.wait(control, timeout=300)["state"] == "released"
    plain = analyst.result(control)["outputs"]
    assert files_with(cluster.nodes[ORGS[0]].dir / "store", released_numbers(plain))
    assert files_with(cluster.nodes[ORGS[1]].dir, released_numbers(plain)) == {}


def test_sealed_result_needs_the_analysts_key(sealed_cluster: Cluster) -> None:
    analyst = sealed_cluster.analyst()
    job_id = analyst.submit(describe("rep3", [ANALYST]), idempotency_key="sealed-key")["id"]
    assert analyst.wait(job_id, timeout=300)["state"] == "released"
    with pytest.raises(SealedResultError, match="does not open with this key"):
        analyst.result(job_id, box_key=new_box_key())
    with pytest.raises(SealedResultError, match="sealed to your box key; pass box_key"):
        analyst.result(job_id)
    assert analyst.result(job_id, box_key=KEY.private_hex)["outputs"]["count"] > 0


def test_an_analysis_that_cannot_seal_is_refused_at_submit(sealed_cluster: Cluster) -> None:
    """It cannot be planned, so the node answers 422 naming why and records nothing."""
    analyst = sealed_cluster.analyst()
    meta = {"analysis": "ttest", "version": "1.0", "datasets": [f"tx_{o}" for o in ORGS],
            "columns": ["amount", "is_fraud"], "params": {"value": "amount", "group": "is_fraud"},
            "protocol": "rep3", "recipients": [ANALYST]}
    before = len(analyst.jobs())
    with pytest.raises(HTTPError) as err:
        analyst.submit(meta)
    assert err.value.status == 422 and "ttest cannot seal its results to analysts yet" in str(err.value)
    assert len(analyst.jobs()) == before


def test_a_peer_cannot_hand_the_coordinator_boxes_for_another_analyst(sealed_cluster: Cluster) -> None:
    """A party's outcome report may carry its sealed boxes, for the job's analysts only (422
    otherwise, and nothing is recorded)."""
    cluster = sealed_cluster
    analyst = cluster.analyst()
    job_id = analyst.submit(describe("rep3", [ANALYST]), idempotency_key="sealed-key")["id"]
    assert analyst.wait(job_id, timeout=300)["state"] == "released"
    alpha = cluster.admin("alpha")
    before = alpha.status(job_id)
    beta = Identity.load(cluster.nodes["beta"].dir / "keys", "beta")
    http = PinnedHTTPS(cluster.nodes["alpha"].url, cluster.fingerprint("alpha"))
    for boxes, why in (({"mallory": "AAAA"}, "sent sealed shares for ['mallory'], to whom job"),
                       (["AAAA"], "sent sealed shares that are not analyst -> box text")):
        env = seal(beta, "outcome", {"job_id": job_id, "state": "released", "reasons": [], "sealed": boxes},
                   cluster.cons.contract.hash, to="alpha")
        with pytest.raises(HTTPError) as e:
            http.request("POST", "/v1/peer/outcome", env)
        assert e.value.status == 422 and why in e.value.detail
    after = alpha.status(job_id)
    assert after["sealed_shares"] == before["sealed_shares"] == sorted(ORGS)
    assert after["outcomes"] == before["outcomes"]
    # the analyst's key still opens the boxes the coordinator kept
    assert analyst.result(job_id, box_key=KEY)["outputs"]["count"] > 0
