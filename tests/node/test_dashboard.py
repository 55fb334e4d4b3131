"""The node's web dashboard in a real browser (Debian's headless Chromium via Playwright), against
real nodes: the ``node_cluster`` fixture of tests/node/conftest.py (three organisations' nodes and a
dealer, each its own process, HTTPS with self-signed certificates)."""

from __future__ import annotations

import signal

import pytest

from tessera.node.example import ANALYST, ORGS
from tessera.node.setup import read_profile
from tests.node.dashboard_helpers import (
    check_admin_dashboard,
    check_bad_token,
    check_recipient_dashboard,
    check_routed_page,
    check_routed_recipient_page,
    chromium,
    missing_browser,
)

_MISSING = missing_browser()
# Skip before the (costly) cluster fixture starts when there is no browser to drive.
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")]

JOB_TIMEOUT_S = 300.0
TX = [f"tx_{o}" for o in ORGS]
#: allowed by the example contract; charges epsilon 0.5 to every tx_* budget
DP_DESCRIBE = {"analysis": "dp_describe", "version": "1.0", "datasets": TX, "columns": ["amount"],
               "params": {"columns": ["amount"]}, "protocol": "rep3", "recipients": [ANALYST],
               "dp": {"epsilon": 0.5, "delta": 0.0}}
#: more iterations than the contract's maximum of 25: denied by every node, nothing runs
TOO_MANY_ITERATIONS = {"analysis": "logistic_regression", "version": "1.0", "datasets": TX,
                       "columns": ["amount", "merchant_risk", "is_fraud"],
                       "params": {"features": ["amount", "merchant_risk"], "target": "is_fraud", "iterations": 40},
                       "protocol": "rep3", "recipients": [ANALYST]}
#: no budget: the analyst's own result, for the recipient's view
DESCRIBE = {"analysis": "describe", "version": "1.0", "datasets": TX, "columns": ["amount"],
            "params": {"columns": ["amount"]}, "protocol": "rep3", "recipients": [ANALYST]}
#: long enough to be stopped while running
LONG_LOGREG = {**TOO_MANY_ITERATIONS, "params": {**TOO_MANY_ITERATIONS["params"], "iterations": 25}}


def analyst_node(cluster) -> str:
    """The node the analyst's profile talks to (it coordinates the analyst's jobs)."""
    url = read_profile(cluster.cons.analyst_profile)["url"]
    return next(name for name, node in cluster.nodes.items() if node.url == url)


def submit_dashboard_jobs(cluster) -> tuple[str, dict[str, str]]:
    """A released DP job, a denied job and a job aborted by stopping a peer node mid-run (the
    peer is started again). Returns the analyst's node and {job id: the final state it reached}."""
    analyst = cluster.analyst()
    node = analyst_node(cluster)
    expected = {analyst.submit(DP_DESCRIBE)["id"]: "released",
                analyst.submit(TOO_MANY_ITERATIONS)["id"]: "denied"}
    for job_id, state in expected.items():
        view = analyst.wait(job_id, timeout=JOB_TIMEOUT_S)
        assert view["state"] == state, f"job {job_id}: {view['state']} {view['reasons']}, expected {state}"

    peer = next(n for n in cluster.nodes if n != node)
    stopped: list[str] = []

    def stop_peer_once_running(view: dict) -> None:
        if view["state"] == "running" and not stopped:
            stopped.append(peer)
            cluster.kill(peer, signal.SIGTERM)

    long_job = analyst.submit(LONG_LOGREG)["id"]
    try:
        view = analyst.wait(long_job, timeout=JOB_TIMEOUT_S, on_progress=stop_peer_once_running)
    finally:
        if stopped:
            cluster.start(peer)
    assert view["state"] == "aborted", f"job {long_job}: {view['state']} {view['reasons']}, expected aborted"
    expected[long_job] = "aborted"
    return node, expected


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def test_dashboard_shows_jobs_budget_and_audit(node_cluster, browser, tmp_path):
    node, jobs = submit_dashboard_jobs(node_cluster)
    check_admin_dashboard(
        browser,
        node_cluster.nodes[node].url,
        node_cluster.admin_token(node),
        jobs,
        screenshot=tmp_path / "dashboard.png",
        # /v1/node names the node's contract identity (Ed25519), not its API certificate's
        fingerprint=node_cluster.cons.contract.party(node).fingerprint,
    )


def test_dashboard_rejects_a_bad_token_then_signs_in(node_cluster, browser):
    node = next(iter(node_cluster.nodes))
    check_bad_token(browser, node_cluster.nodes[node].url, good_token=node_cluster.admin_token(node))


def test_dashboard_keeps_api_text_as_text_and_shows_errors(browser):
    """No node needed: the page's files and a made-up API are served by the browser's routing."""
    check_routed_page(browser)


def test_a_recipient_sees_its_result_in_the_dashboard(node_cluster, browser):
    """#16.7: the analyst, a recipient of a released job, opens the dashboard of its node with its
    own token and finds the outputs there, named, with the values the result API gives."""
    analyst = node_cluster.analyst()
    job_id = analyst.submit(DESCRIBE)["id"]
    view = analyst.wait(job_id, timeout=JOB_TIMEOUT_S)
    assert view["state"] == "released", view["reasons"]
    token = read_profile(node_cluster.cons.analyst_profile)["token"]
    check_recipient_dashboard(browser, node_cluster.nodes[analyst_node(node_cluster)].url, token, job_id)


def test_dashboard_shows_results_times_with_zone_and_jobs_that_did_not_release(browser):
    """No node needed: a recipient's result table, dates with their time zone, and denied,
    rejected, cancelled and failed jobs without a red "100%" bar."""
    check_routed_recipient_page(browser)
