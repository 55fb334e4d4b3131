import json

import pytest
from typer.testing import CliRunner

from tessera.cli.main import app

runner = CliRunner()


def test_keys_new_prints_the_fingerprint_and_protects_the_key(tmp_path):
    res = runner.invoke(app, ["keys", "new", "--party", "bank_a", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "fingerprint: sha256:" in res.output
    assert (tmp_path / "bank_a.key").stat().st_mode & 0o077 == 0
    assert "PRIVATE" not in res.output
    again = runner.invoke(app, ["keys", "new", "--party", "bank_a", "--out", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output


SCHEMA = """
[[columns]]
name = "amount"
type = "float"
min = 0
max = 10000
[[columns]]
name = "hour"
type = "int"
min = 0
max = 23
"""


def test_explain_prints_the_plan_and_what_it_reveals(tmp_path):
    (tmp_path / "s.toml").write_text(SCHEMA)
    res = runner.invoke(app, ["explain", "describe", "--schema", str(tmp_path / "s.toml"), "--param", "columns=amount,hour"])
    assert res.exit_code == 0, res.output
    assert "local stage" in res.output and "secure stage" in res.output and "mean[amount]" in res.output
    bad = runner.invoke(app, ["explain", "describe", "--schema", str(tmp_path / "s.toml"), "--param", "columns=nope,hour"])
    assert bad.exit_code == 1 and "no column 'nope'" in bad.output


@pytest.mark.slow
def test_run_over_files(tmp_path):
    import pandas as pd

    (tmp_path / "s.toml").write_text(SCHEMA)
    frames = {"a": pd.DataFrame({"amount": [10.0, 20.0, 30.0], "hour": [1, 2, 3]}),
              "b": pd.DataFrame({"amount": [40.0, 50.0], "hour": [4, 5]})}
    args = ["run", "describe", "--schema", str(tmp_path / "s.toml"), "--param", "columns=amount,hour",
            "--param", "extremes=true",
            "--protocol", "semi2k"]
    for name, df in frames.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
        args += ["--party", f"{name}={tmp_path / f'{name}.csv'}"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)["outputs"]
    assert out["count"] == 5 and out["amount"]["mean"] == pytest.approx(30.0, abs=1e-4)
    assert out["hour"]["max"] == pytest.approx(5.0, abs=1e-4)


@pytest.mark.slow
def test_demo_exits_zero_and_prints_each_result_next_to_plaintext():
    res = runner.invoke(app, ["demo", "--rows", "6000"])
    assert res.exit_code == 0, res.output
    for label in ("row count", "mean amount", "std of amount", "corr(amount, is_fraud)"):
        assert label in res.output
    assert "all results match" in res.output


@pytest.mark.slow
def test_bench_prints_json_lines():
    res = runner.invoke(app, ["bench", "--workload", "mul", "--n", "1000", "--protocol", "rep3", "--repeat", "1"])
    assert res.exit_code == 0, res.output
    line = json.loads(res.output.strip().splitlines()[-1])
    assert line["workload"] == "mul" and line["protocol"] == "rep3" and line["seconds"] > 0
    assert set(line["bytes_sent"]) == {"P0", "P1", "P2"} and line["rounds"] == 3


@pytest.mark.slow
def test_cluster_run_selftest():
    res = runner.invoke(app, ["cluster", "run", "--parties", "3", "--protocol", "semi2k", "--args", '{"n": 50}'])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert set(out["results"]) == {"P0", "P1", "P2"} and "dealer" in out["comm"]
    bad = runner.invoke(app, ["cluster", "run", "os:system"])
    assert bad.exit_code == 1 and "tessera package" in bad.output


@pytest.mark.slow
def test_vertical_fraud_demo_trains_the_model_over_psi_aligned_rows():
    res = runner.invoke(app, ["demo", "--scenario", "vertical-fraud", "--rows", "6000"])
    assert res.exit_code == 0, res.output
    assert "common customers (PSI)" in res.output and "matches the plaintext model" in res.output


def test_audit_verify_takes_the_key_from_a_node_directory(tmp_path):
    """``tessera audit verify STORE/audit.db --node DIR`` (#15.11): no key to copy by hand."""
    from tessera.governance.audit import AuditLog
    from tessera.net.identity import Identity
    from tessera.node.setup import init_node

    init_node(tmp_path / "n", "zeta", api_port=8443, mpc_ports=(9000, 9010))
    log = AuditLog(tmp_path / "audit.db", Identity.load(tmp_path / "n" / "keys", "zeta"))
    log.append("contract_adopted", {"contract_id": "c", "hash": "ab" * 32})
    res = runner.invoke(app, ["audit", "verify", str(tmp_path / "audit.db"), "--node", str(tmp_path / "n")])
    assert res.exit_code == 0 and "1 entries verify" in res.output, res.output
    init_node(tmp_path / "m", "zeta", api_port=8443, mpc_ports=(9000, 9010))  # another node's key
    res = runner.invoke(app, ["audit", "verify", str(tmp_path / "audit.db"), "--node", str(tmp_path / "m")])
    assert res.exit_code == 1 and "entry 0 has an invalid signature" in " ".join(res.output.split())
    res = runner.invoke(app, ["audit", "verify", str(tmp_path / "audit.db"), "--node", str(tmp_path / "none")])
    assert res.exit_code == 1 and "no node configuration" in " ".join(res.output.split())
