"""Three organisations' nodes (+ dealer) as separate processes on loopback: an analyst's jobs end
to end, checked against plaintext references on the pooled data (which no node has)."""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from tessera.errors import PeerAuthError
from tessera.governance.audit import AuditLog, compare_logs, verify_entries
from tessera.net.identity import Identity
from tessera.node.client import Client
from tessera.node.example import FRAUD_FEATURES, ORGS
from tessera.node.peers import HTTPError, PinnedHTTPS, seal
from tessera.node.setup import add_analyst, read_profile

pytestmark = pytest.mark.slow

#: describe encodes amount (declared range [0, 10000]) scaled to [-1, 1] with 16 fractional bits:
#: a resolution of 5000 / 2^16 = 0.076 in the mean; two steps of it is the tolerance
MEAN_TOL = 2 * 5000 / 2**16

TX = [f"tx_{o}" for o in ORGS]
LOGREG = {"analysis": "logistic_regression", "version": "1.0", "datasets": TX,
          "columns": [*FRAUD_FEATURES, "is_fraud"],
          "params": {"features": FRAUD_FEATURES, "target": "is_fraud", "iterations": 10},
          "protocol": "rep3", "recipients": ["analyst-1"]}
META = {"analysis": "meta_analysis", "version": "1.0", "datasets": [f"trial_{o}" for o in ORGS],
        "columns": ["outcome", "treatment"], "params": {"outcome": "outcome", "treatment": "treatment", "min_arm_rows": 20},
        "protocol": "semi2k", "recipients": ["analyst-1"]}
DESCRIBE = {"analysis": "describe", "version": "1.0", "datasets": TX, "columns": ["amount"],
            "params": {"columns": ["amount"]}, "protocol": "rep3", "recipients": ["analyst-1"]}
FORBIDDEN = {**LOGREG, "columns": ["amount", "channel", "is_fraud"],
             "params": {"features": ["amount"], "target": "is_fraud", "iterations": 40},
             "recipients": ["analyst-1", "beta"]}


def pooled(cluster, kind: str) -> pd.DataFrame:
    return pd.concat([pd.read_csv(cluster.cons.data[o][kind]) for o in ORGS], ignore_index=True)


def plain_logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    z = np.column_stack([np.ones(len(x)), x])
    beta = np.zeros(z.shape[1])
    for _ in range(50):
        p = 1 / (1 + np.exp(-z @ beta))
        step = np.linalg.solve(z.T @ (z * (p * (1 - p))[:, None]), z.T @ (p - y))
        beta -= step
    return beta


def test_fraud_model_meta_analysis_and_forbidden_job(node_cluster):
    analyst = node_cluster.analyst()
    ids = {name: analyst.submit(job)["id"] for name, job in
           (("logreg", LOGREG), ("meta", META), ("forbidden", FORBIDDEN))}
    seen: list[str] = []
    final = {name: analyst.wait(i, timeout=300, on_progress=lambda j: seen.append(j["state"]))
             for name, i in ids.items()}

    # the logistic regression matches the plaintext model on the pooled rows
    assert final["logreg"]["state"] == "released", final["logreg"]["reasons"]
    assert "running" in seen and "released" in seen
    tx = pooled(node_cluster, "tx")
    want = plain_logistic(tx[FRAUD_FEATURES].to_numpy(float), tx["is_fraud"].to_numpy(float))
    got = analyst.result(ids["logreg"])["outputs"]["coefficients"]
    np.testing.assert_allclose(got, want, rtol=0.03, atol=2e-3)

    # the meta-analysis matches statsmodels' DerSimonian-Laird on the per-study effects
    assert final["meta"]["state"] == "released", final["meta"]["reasons"]
    effs, variances = [], []
    for o in ORGS:
        df = pd.read_csv(node_cluster.cons.data[o]["trial"])
        t, y = df.treatment.astype(bool), df.outcome
        effs.append(y[t].mean() - y[~t].mean())
        variances.append(y[t].var() / t.sum() + y[~t].var() / (~t).sum())
    ref = combine_effects(np.array(effs), np.array(variances), method_re="dl")
    out = analyst.result(ids["meta"])["outputs"]
    assert out["fixed_effect"] == pytest.approx(ref.mean_effect_fe, abs=1e-3)
    # DerSimonian-Laird truncates tau^2 at zero (statsmodels reports the negative estimate):
    # with Q < df the random-effects estimate is the fixed-effect one
    want_re = ref.mean_effect_re if ref.tau2 > 0 else ref.mean_effect_fe
    assert out["random_effect"] == pytest.approx(want_re, abs=1e-3)
    assert out["tau2"] == pytest.approx(max(ref.tau2, 0.0), abs=1e-3)
    assert out["fixed_se"] == pytest.approx(ref.sd_eff_w_fe, abs=1e-3)

    # the forbidden job is denied with every reason, and nothing ran
    job = final["forbidden"]
    assert job["state"] == "denied"
    text = " ".join(job["reasons"])
    assert "['channel'] are not allowed" in text and "iterations=40 exceeds" in text and "['beta']" in text
    assert job["session_id"] is None
    with pytest.raises(HTTPError) as e:
        analyst.result(ids["forbidden"])
    assert e.value.status == 409

    # every node's view agrees, every audit log verifies, and the parties agree on the transcripts
    for o in ORGS:
        view = node_cluster.admin(o).wait(ids["logreg"], timeout=60)  # each node records its own end
        assert view["state"] == "released"
        assert node_cluster.admin(o).audit()["verified"] is True
    logs = {}
    for o in ORGS:
        d = node_cluster.nodes[o].dir
        entries = AuditLog(d / "store" / "audit.db", Identity.load(d / "keys", o)).entries()
        assert verify_entries(entries, node_cluster.cons.contract.party(o).public_key).ok
        logs[o] = [e for e in entries if e.body.get("job_id") in (ids["logreg"], ids["meta"])]
    assert compare_logs(logs) == []
    assert sum(e.kind == "transcript_hash" for e in logs["alpha"]) == 2
    # results are for their recipients only: no node's owner reads the analyst's (#15.15), and
    # only the coordinator (the analyst's node) received the outputs, to hand them on
    for o in ORGS:
        with pytest.raises(HTTPError) as e:
            node_cluster.admin(o).result(ids["logreg"])
        assert e.value.status == 403 and f"node {o} (its owner) is not a recipient" in e.value.detail
    assert node_cluster.admin("alpha").status(ids["logreg"])["has_result"] is True
    assert node_cluster.admin("beta").status(ids["logreg"])["has_result"] is False


VERTICAL = {"analysis": "logistic_regression", "version": "1.0", "datasets": ["cust_alpha", "fraud_beta"],
            "columns": [*FRAUD_FEATURES, "is_fraud"], "partition": "vertical", "join_key": "customer_id",
            "params": {"features": FRAUD_FEATURES, "target": "is_fraud", "iterations": 10},
            "protocol": "semi2k", "recipients": ["analyst-1"]}


def test_vertical_job_psi_then_model(node_cluster):
    analyst = node_cluster.analyst()
    done = analyst.wait(analyst.submit(VERTICAL)["id"], timeout=300)
    assert done["state"] == "released", done["reasons"]
    assert done["parties"] == ["alpha", "beta", "trusted_dealer"]
    feats = pd.read_csv(node_cluster.cons.data["alpha"]["cust"])
    labels = pd.read_csv(node_cluster.cons.data["beta"]["fraud"])
    join = feats.merge(labels, on="customer_id")  # the true join, which neither bank has
    out = analyst.result(done["id"])["outputs"]
    assert out["psi_size"] == len(join)
    want = plain_logistic(join[FRAUD_FEATURES].to_numpy(float), join["is_fraud"].to_numpy(float))
    np.testing.assert_allclose(out["coefficients"], want, rtol=0.03, atol=2e-3)


def test_results_go_to_the_named_recipients_only(node_cluster):
    analyst = node_cluster.analyst()
    job = {**LOGREG, "recipients": ["alpha"]}
    done = analyst.wait(analyst.submit(job)["id"], timeout=300)
    assert done["state"] == "released", done["reasons"]
    with pytest.raises(HTTPError) as e:  # the analyst asked, but named only alpha as recipient
        analyst.result(done["id"])
    assert e.value.status == 403
    assert node_cluster.admin("alpha").result(done["id"])["outputs"]["coefficients"].shape == (5,)
    for other in ("beta", "gamma"):
        assert node_cluster.admin(other).wait(done["id"], timeout=60)["state"] == "released"
        with pytest.raises(HTTPError) as e:
            node_cluster.admin(other).result(done["id"])
        assert e.value.status == 403  # not recipients (and they never received the outputs)
        assert node_cluster.admin(other).status(done["id"])["has_result"] is False


def test_idempotent_submission_runs_once(node_cluster):
    analyst = node_cluster.analyst()
    first = analyst.submit(DESCRIBE, idempotency_key="describe-once")
    again = analyst.submit(DESCRIBE, idempotency_key="describe-once")
    assert again["id"] == first["id"]
    done = analyst.wait(first["id"], timeout=120)
    assert done["state"] == "released"
    assert analyst.submit(DESCRIBE, idempotency_key="describe-once")["id"] == first["id"]
    assert sum(j["idempotency_key"] == "describe-once" for j in analyst.jobs()) == 1
    d = node_cluster.nodes["beta"].dir
    entries = AuditLog(d / "store" / "audit.db", Identity.load(d / "keys", "beta")).entries()
    assert sum(e.kind == "session_start" and e.body["job_id"] == first["id"] for e in entries) == 1
    # the same key for a different job is refused, not silently merged
    with pytest.raises(HTTPError) as e:
        analyst.submit({**DESCRIBE, "columns": ["amount", "merchant_risk"],
                        "params": {"columns": ["amount", "merchant_risk"]}}, idempotency_key="describe-once")
    assert e.value.status == 409
    tx = pooled(node_cluster, "tx")
    out = analyst.result(first["id"])["outputs"]
    assert out["count"] == len(tx)
    assert out["amount"]["mean"] == pytest.approx(tx.amount.mean(), abs=MEAN_TOL)


def test_strangers_are_refused(node_cluster, tmp_path):
    beta = node_cluster.nodes["beta"]
    contract = node_cluster.cons.contract
    # a node that is not in the contract cannot talk to a node ...
    rogue = Identity.create("mallory", tmp_path / "keys")
    http = PinnedHTTPS(beta.url, node_cluster.fingerprint("beta"))
    with pytest.raises(HTTPError) as e:
        http.request("POST", "/v1/peer/propose", seal(rogue, "propose", {"job_id": "x"}, contract.hash, to="beta"))
    assert e.value.status == 403 and "not a party" in e.value.detail
    # ... nor impersonate a party with its own key
    fake_alpha = Identity.create("alpha", tmp_path / "fake")
    with pytest.raises(HTTPError) as e:
        http.request("POST", "/v1/peer/propose", seal(fake_alpha, "propose", {"job_id": "x"}, contract.hash, to="beta"))
    assert e.value.status == 403 and "not signed with its contract key" in e.value.detail
    # a replayed genuine message is refused
    real_alpha = Identity.load(node_cluster.nodes["alpha"].dir / "keys", "alpha")
    env = seal(real_alpha, "outcome", {"job_id": "nope", "state": "failed"}, contract.hash, to="beta")
    with pytest.raises(HTTPError):
        http.request("POST", "/v1/peer/outcome", env)  # not a job id: 422
    with pytest.raises(HTTPError) as e:
        http.request("POST", "/v1/peer/outcome", env)
    assert e.value.status == 403 and "replayed" in e.value.detail
    # the MPC listeners pin certificates too: a client pinning another fingerprint is refused
    with pytest.raises(PeerAuthError):
        PinnedHTTPS(beta.url, node_cluster.fingerprint("alpha")).request("GET", "/health")
    # a token issued while the node runs is accepted at once (the contract names analyst-1)
    fresh = add_analyst(node_cluster.nodes["beta"].dir, "analyst-1")
    assert Client(beta.url, node_cluster.fingerprint("beta"), fresh).node()["viewer"] == {"kind": "analyst",
                                                                                       "id": "analyst-1"}
    # an unknown analyst token is refused; an analyst may not approve
    stranger = Client(node_cluster.nodes["alpha"].url, node_cluster.fingerprint("alpha"), "tsr_not-a-token")
    with pytest.raises(HTTPError) as e:
        stranger.jobs()
    assert e.value.status == 401
    with pytest.raises(HTTPError) as e:
        node_cluster.analyst().approve("whatever")
    assert e.value.status == 403


def test_slow_client_does_not_block_others(node_cluster):
    alpha = node_cluster.nodes["alpha"]
    host, port = alpha.url.removeprefix("https://").split(":")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    slow = []
    for _ in range(5):  # clients that send half a request and stall
        s = ctx.wrap_socket(socket.create_connection((host, int(port))))
        s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
        slow.append(s)
    analyst = node_cluster.analyst()
    blocker = analyst.submit(DESCRIBE)
    waiters = [threading.Thread(target=analyst.wait, args=(blocker["id"], 60)) for _ in range(5)]
    for t in waiters:
        t.start()
    start = time.monotonic()
    done = analyst.wait(analyst.submit(DESCRIBE)["id"], timeout=120)
    assert done["state"] == "released"
    assert time.monotonic() - start < 100
    for s in slow:
        s.close()
    for t in waiters:
        t.join(60)


def test_twenty_jobs_at_once(node_cluster):
    analyst = node_cluster.analyst()
    tx = pooled(node_cluster, "tx")
    jobs = []
    for i in range(20):
        if i % 2:  # half of them ask for more iterations than the contract allows
            jobs.append(("denied", {**LOGREG, "params": {**LOGREG["params"], "iterations": 30 + i}}))
        else:
            jobs.append(("released", DESCRIBE))
    with ThreadPoolExecutor(20) as pool:
        submitted = list(pool.map(lambda j: analyst.submit(j[1]), jobs))
        finals = list(pool.map(lambda s: analyst.wait(s["id"], timeout=400), submitted))
    assert len({s["id"] for s in submitted}) == 20
    for (want, _), job in zip(jobs, finals):
        assert job["state"] == want, (job["state"], job["reasons"])
        if want == "released":
            out = analyst.result(job["id"])["outputs"]
            assert out["count"] == len(tx)
            assert out["amount"]["mean"] == pytest.approx(tx.amount.mean(), abs=MEAN_TOL)
        else:
            assert any("exceeds the maximum of 25 iterations" in r for r in job["reasons"])


def test_metrics_logs_and_no_secrets(node_cluster):
    analyst = node_cluster.analyst()
    analyst.wait(analyst.submit(DESCRIBE)["id"], timeout=120)
    alpha = node_cluster.admin("alpha")
    metrics = alpha.http.request("GET", "/metrics", text=True)
    counts = {}
    for line in metrics.splitlines():
        m = re.match(r'tessera_jobs\{node="alpha",state="(\w+)"\} (\S+)', line)
        if m:
            counts[m.group(1)] = float(m.group(2))
    jobs = alpha.jobs()
    for state in ("released", "denied"):
        assert counts[state] == sum(j["state"] == state for j in jobs)
    budget = {b["dataset"]: b["epsilon_left"] for b in alpha.budget()}
    m = re.search(r'tessera_budget_epsilon_remaining\{dataset="tx_alpha",node="alpha"\} (\S+)', metrics)
    assert m and float(m.group(1)) == pytest.approx(budget["tx_alpha"])
    assert re.search(r'tessera_mpc_bytes_sent_total\{node="alpha"\} [1-9]', metrics)
    assert re.search(r'tessera_job_seconds_count\{node="alpha",state="released"\} [1-9]', metrics)
    # JSON-line logs carry job ids; no token appears in any log, audit log or job store
    lines = [json.loads(x) for x in (node_cluster.nodes["alpha"].dir / "store" / "node.log").read_text().splitlines()]
    assert any(x.get("job_id") and x["node"] == "alpha" for x in lines)
    secrets = [read_profile(node_cluster.cons.analyst_profile)["token"]] + \
        [node_cluster.admin_token(n) for n in node_cluster.nodes]
    for node in node_cluster.nodes.values():
        for f in [*(node.dir / "store").rglob("*"), node.dir / "stdout.log", node.dir / "node.toml"]:
            if f.is_file():
                blob = f.read_bytes()
                assert not any(s.encode() in blob for s in secrets), f


def test_each_node_plans_each_job_once(node_cluster):
    """The typed job is planned exactly once per node: when that node decides on it (never at
    submission, at start, or again in the party process). Every node counts its planner calls."""
    analyst = node_cluster.analyst()
    analyst.wait(analyst.submit(DESCRIBE)["id"], timeout=120)
    for name in node_cluster.nodes:
        admin = node_cluster.admin(name)
        metrics = admin.http.request("GET", "/metrics", text=True)
        m = re.search(rf'tessera_jobs_planned_total\{{node="{name}"\}} (\S+)', metrics)
        planned = float(m.group(1)) if m else 0.0
        assert planned == len(admin.jobs()), name


def test_cancel_a_running_job_at_every_party_from_the_cli(node_cluster):
    """#16.5 and #16.7 across real nodes: while a long fit runs, its view shows the real fraction
    and the Newton iteration; ``tessera job cancel`` aborts it at every party (each node records
    the cancel as the reason, its party process ended), a second cancel is one 409 line, ``job
    wait`` and ``job status`` read well, and the ports are free for the next job."""
    from typer.testing import CliRunner

    from tessera.cli.main import app

    cli = CliRunner()
    profile = str(node_cluster.cons.analyst_profile)
    analyst = node_cluster.analyst()
    job_id = analyst.submit({**LOGREG, "params": {**LOGREG["params"], "iterations": 25}})["id"]
    deadline = time.monotonic() + 240
    seen: list[tuple[float, str]] = []
    while time.monotonic() < deadline:
        view = analyst.status(job_id)
        p = view["progress"]
        if view["state"] == "running" and str(p.get("stage", "")).startswith("Newton iteration"):
            seen.append((p["fraction"], p["stage"]))
            if len(seen) >= 2 and seen[-1][0] > seen[0][0]:
                break
        assert view["state"] in ("submitted", "pending", "accepted", "running"), view
        time.sleep(0.3)
    assert len(seen) >= 2 and 0.5 < seen[0][0] < seen[-1][0] < 1.0, seen  # the real, growing fraction

    res = cli.invoke(app, ["job", "cancel", job_id, "--reason", "wrong features", "-p", profile])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().startswith(f"aborted: job {job_id} ("), res.stdout
    assert "cancelled by analyst analyst-1: wrong features" in res.stdout
    for o in ORGS:
        view = node_cluster.admin(o).wait(job_id, timeout=60)
        assert view["state"] == "aborted", (o, view["state"], view["reasons"])
        assert any("cancelled by analyst analyst-1: wrong features" in r for r in view["reasons"]), (o, view)
        assert view["progress"]["fraction"] < 1.0  # it stopped where it was: no "100%"
        assert node_cluster.admin(o).health()["jobs_running"] == 0  # its party process was ended

    again = cli.invoke(app, ["job", "cancel", job_id, "-p", profile])
    assert again.exit_code == 1
    assert again.stderr.strip() == (f"error: HTTP 409: job {job_id} has already ended (aborted): only a job that "
                                    "has not ended can be cancelled")
    waited = cli.invoke(app, ["job", "wait", job_id, "-p", profile])
    assert waited.exit_code == 1 and waited.stdout.startswith(f"{job_id}  aborted"), waited.output
    status = cli.invoke(app, ["job", "status", job_id, "-p", profile])
    assert status.exit_code == 0
    assert "state      aborted" in status.stdout and "reason     " in status.stdout
    assert "Traceback" not in status.output + again.output + res.output

    # the next job gets its ports and runs
    after = analyst.wait(analyst.submit(DESCRIBE)["id"], timeout=240)
    assert after["state"] == "released", after["reasons"]
