"""#16.7 on the command line, without a node: ``audit compare`` over logs of nodes that were not
parties to a job (or were its dealer), what ``job approve`` / ``reject`` print, and the times
of ``job status``. Against real nodes: tests/node/test_e2e.py (cancel, wait, status)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tessera.cli.job import decided, summary, when
from tessera.cli.main import app
from tessera.governance.audit import AuditLog
from tessera.net.identity import Identity

runner = CliRunner()


def _log(tmp_path: Path, name: str, entries: list[tuple[str, dict[str, object]]]) -> str:
    log = AuditLog(tmp_path / f"{name}.db", Identity.create(name, tmp_path / "keys"))
    for kind, body in entries:
        log.append(kind, body)
    path = tmp_path / f"{name}.jsonl"
    log.export(path)
    return f"{name}={path}"


def test_audit_compare_skips_a_node_that_was_not_a_party_and_the_dealer(tmp_path: Path) -> None:
    ran = [("session_start", {"job_id": "j1", "parties": ["alpha", "beta", "dealer"], "role": "compute"}),
           ("transcript_hash", {"job_id": "j1", "hash": "ab" * 32})]
    alpha = _log(tmp_path, "alpha", [("contract_adopted", {"hash": "00"}), *ran])
    beta = _log(tmp_path, "beta", ran)
    gamma = _log(tmp_path, "gamma", [("contract_adopted", {"hash": "00"})])  # not a party to j1
    dealer = _log(tmp_path, "dealer", [("session_start", {"job_id": "j1", "parties": ["alpha", "beta", "dealer"],
                                                          "role": "dealer"}),
                                       ("session_end", {"job_id": "j1", "state": "released"})])
    res = runner.invoke(app, ["audit", "compare", alpha, beta, gamma, dealer])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "note: gamma, dealer were not a party to job j1 (no entry for it in the log): not compared for it" in out
    assert "all parties recorded the same transcripts" in out
    # a party that took part and recorded no transcript, or another one, is still found
    silent = _log(tmp_path, "delta", [("session_start", {"job_id": "j1", "parties": [], "role": "compute"})])
    other = _log(tmp_path, "omega", [("transcript_hash", {"job_id": "j1", "hash": "cd" * 32})])
    res = runner.invoke(app, ["audit", "compare", alpha, beta, silent, other])
    assert res.exit_code == 1
    out = " ".join(res.output.split())
    assert "job j1: no transcript hash recorded by ['delta']" in out
    assert "job j1: parties disagree on the transcript hash" in out
    nothing = runner.invoke(app, ["audit", "compare", gamma])
    assert nothing.exit_code == 0 and "no transcript hashes in these logs: no job to compare" in nothing.output


def _view(state: str, coordinator: str = "alpha", **kw: object) -> dict[str, object]:
    return {"id": "00000000000000c1", "state": state, "coordinator": coordinator, "decisions": {}, **kw}


def test_approve_and_reject_say_what_they_did() -> None:
    """Not ``accepted  waiting for the owner's approval``: this node's decision, then where the job stands."""
    assert decided(_view("accepted"), "beta", True) == (
        "approved job 00000000000000c1 at beta: the coordinator alpha was told; the job runs once every party "
        "has accepted")
    assert decided(_view("pending", decisions={"alpha": {"state": "accepted"}, "gamma": {"state": "awaiting_approval"}}),
                   "alpha", True) == "approved job 00000000000000c1 at alpha: the job waits for the approval of gamma"
    assert decided(_view("awaiting_approval"), "alpha", True) == (
        "approved job 00000000000000c1 at alpha: the job runs once every party has accepted")
    assert decided(_view("running"), "alpha", True) == "approved job 00000000000000c1 at alpha: the job is running"
    assert decided(_view("denied"), "beta", False) == (
        "rejected job 00000000000000c1 at beta: the job is denied at every party")


def test_job_status_shows_times_with_their_zone() -> None:
    assert when("2026-11-30T02:30:00+00:00") == "2026-11-30 02:30:00 UTC"
    assert when("2026-11-30T03:30:00+01:00") == "2026-11-30 03:30:00 UTC+01:00"
    assert when(None) == "-" and when("soon") == "soon"
    text = summary({"id": "00000000000000c1", "state": "pending", "analysis": "describe", "version": "1.0",
                    "created": "2026-11-30T02:30:00+00:00", "updated": "2026-11-30T02:31:00+00:00",
                    "progress": {"detail": "waiting for approval by beta"}})
    lines = text.splitlines()
    assert "state      pending: waiting for approval by beta" in lines
    assert "created    2026-11-30 02:30:00 UTC; updated 2026-11-30 02:31:00 UTC" in lines
    assert lines[-1] == ("follow     `tessera job wait 00000000000000c1`; withdraw it: "
                         "`tessera job cancel 00000000000000c1`")
