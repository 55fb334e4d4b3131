import json
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.errors import AuditError
from tessera.governance.audit import AuditLog, compare_logs, read_jsonl, verify_entries


@pytest.fixture
def log(tmp_path, identities):
    log = AuditLog(tmp_path / "a.db", identities["bank_a"])
    log.append("contract_adopted", {"contract": "fraud-2026", "hash": "ab" * 32})
    log.append("job_received", {"job_id": "j1", "analysis": "describe"})
    log.append("policy_decision", {"job_id": "j1", "allowed": False, "reasons": ["too small group"]})
    log.append("transcript_hash", {"job_id": "j1", "hash": "cd" * 32})
    log.append("output_released", {"job_id": "j1", "to": ["analyst-1"]})
    return log


def test_a_fresh_log_verifies(log, identities):
    rep = verify_entries(log.entries(), identities["bank_a"].public_key)
    assert rep.ok and rep.entries == 5
    assert verify_entries(log.entries(), identities["bank_a"].public_key, expected_head=rep.head).ok


def test_edits_removals_and_truncation_name_the_entry(log, identities, tmp_path):
    key = identities["bank_a"].public_key
    path = tmp_path / "a.jsonl"
    log.export(path)
    lines = path.read_text().splitlines()
    edited = json.loads(lines[2])
    edited["body"]["allowed"] = True
    path.write_text("\n".join([*lines[:2], json.dumps(edited), *lines[3:]]) + "\n")
    rep = verify_entries(read_jsonl(path), key)
    assert not rep.ok and rep.first_bad == 2 and "altered" in rep.reason
    path.write_text("\n".join([*lines[:1], *lines[2:]]) + "\n")
    rep = verify_entries(read_jsonl(path), key)
    assert rep.first_bad == 1 and "missing" in rep.reason
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][:40] + "\n")
    rep = read_jsonl(path)
    assert not rep.ok and rep.first_bad == 3 and "truncated" in rep.reason
    full_head = verify_entries(log.entries(), key).head
    cut = verify_entries(log.entries()[:4], key, expected_head=full_head)
    assert not cut.ok and cut.first_bad == 4
    other = verify_entries(log.entries(), identities["bank_b"].public_key)
    assert other.first_bad == 0 and "signature" in other.reason


def test_secrets_cannot_be_logged(log):
    with pytest.raises(AuditError, match="plain JSON"):
        log.append("session_end", {"job_id": "j1", "shares": np.arange(3)})
    with pytest.raises(AuditError, match="plain JSON"):
        log.append("session_end", {"job_id": "j1", "seed": b"\x00" * 16})


def test_compare_finds_a_party_with_another_transcript(tmp_path, identities):
    logs = {}
    for name, h in [("bank_a", "aa"), ("bank_b", "aa"), ("bank_c", "bb")]:
        lg = AuditLog(tmp_path / f"{name}.db", identities[name])
        lg.append("transcript_hash", {"job_id": "j7", "hash": h * 32})
        logs[name] = lg.entries()
    problems = compare_logs(logs)
    assert len(problems) == 1 and "j7" in problems[0] and "bank_c" in problems[0]
    assert compare_logs({k: v for k, v in logs.items() if k != "bank_c"}) == []


def test_cli_verify_and_compare(log, tmp_path, identities):
    path = tmp_path / "a.jsonl"
    log.export(path)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", str(path), "--public-key", identities["bank_a"].public_key])
    assert ok.exit_code == 0 and "5 entries verify" in ok.output
    bad = runner.invoke(app, ["audit", "verify", str(path), "--public-key", identities["bank_b"].public_key])
    assert bad.exit_code == 1 and "first bad entry: 0" in bad.output
    same = runner.invoke(app, ["audit", "compare", f"bank_a={path}", f"copy={path}"])
    assert same.exit_code == 0


def flat(result):
    """A command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_cli_verifies_and_exports_an_audit_db_directly(log, tmp_path, identities):
    """#15.11: ``tessera audit verify|export`` read a node's audit.db itself (read-only)."""
    runner = CliRunner()
    key = identities["bank_a"].public_key
    db = tmp_path / "a.db"
    ok = runner.invoke(app, ["audit", "verify", str(db), "--public-key", key])
    assert ok.exit_code == 0 and "5 entries verify" in ok.output, ok.output
    out = tmp_path / "export.jsonl"
    done = runner.invoke(app, ["audit", "export", str(db), "--out", str(out)])
    assert done.exit_code == 0 and f"5 entries written to {out}" in done.output.replace("\n", "")
    assert [json.loads(x)["kind"] for x in out.read_text().splitlines()][1] == "job_received"
    assert runner.invoke(app, ["audit", "verify", str(out), "--public-key", key]).exit_code == 0
    shown = runner.invoke(app, ["audit", "export", str(db)])
    assert shown.exit_code == 0 and shown.output == out.read_text()
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE audit SET body = '{\"job_id\": \"j1\", \"allowed\": true, \"reasons\": []}' WHERE idx = 2")
    con.close()
    bad = runner.invoke(app, ["audit", "verify", str(db), "--public-key", key])
    assert bad.exit_code == 1
    assert "entry 2 was altered (its hash does not match its content) (first bad entry: 2)" in flat(bad)
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE audit SET body = 'not json' WHERE idx = 3")
    con.close()
    broken = runner.invoke(app, ["audit", "export", str(db)])
    assert broken.exit_code == 1 and "entry 3 is malformed (unreadable body or fields)" in flat(broken)
    gone = runner.invoke(app, ["audit", "verify", str(tmp_path / "nope.db"), "--public-key", key])
    assert gone.exit_code == 1 and "cannot read" in flat(gone)
    assert not (tmp_path / "nope.db").exists()  # never created by reading


def test_a_log_reports_a_damaged_entry_by_index(log, identities):
    con = sqlite3.connect(log.path)
    with con:
        con.execute("UPDATE audit SET body = '[1, 2' WHERE idx = 1")
    con.close()
    rep = log.verify()
    assert not rep.ok and rep.first_bad == 1 and rep.reason == "entry 1 is malformed (unreadable body or fields)"
    with pytest.raises(AuditError, match="entry 1 is malformed"):
        log.entries()
    log.append("session_end", {"job_id": "j1"})  # the log still takes entries (they follow the damaged one)
