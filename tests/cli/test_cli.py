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
            "--protocol", "semi2k", "--json"]
    for name, df in frames.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
        args += ["--party", f"{name}={tmp_path / f'{name}.csv'}"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)["outputs"]  # progress goes to stderr
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
    assert set(line["bytes_sent"]) == {"P0", "P1", "P2"} and line["rounds"] == 2


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


# --- #16.4: a user's mistake is one line on stderr, never a traceback ---------------------------

CATEGORY_SCHEMA = SCHEMA + """
[[columns]]
name = "channel"
type = "category"
levels = ["web", "pos"]
"""


def _one_line_error(res, *named: str) -> str:
    """The mistake's one line (asserting exit 1, nothing on stdout, no traceback, the names)."""
    assert res.exit_code == 1, (res.exit_code, res.output)
    assert res.stdout == "", res.stdout
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr
    for part in named:
        assert part in lines[0], (part, lines[0])
    return lines[0]


def _files(tmp_path, schema: str = SCHEMA) -> list[str]:
    (tmp_path / "s.toml").write_text(schema)
    args = []
    for name, rows in (("a", "10,1\n20,2\n30,3\n"), ("b", "40,4\n50,5\n60,6\n")):
        (tmp_path / f"{name}.csv").write_text("amount,hour\n" + rows)
        args += ["--party", f"{name}={tmp_path / f'{name}.csv'}"]
    return ["--schema", str(tmp_path / "s.toml"), *args]


MISTAKES = [
    ("misspelled target", ["explain", "linear_regression", "--param", "features=hour", "--param", "target=amout"],
     ["no column 'amout'; columns are ['amount', 'hour', 'channel']"]),
    ("missing parameter", ["explain", "linear_regression", "--param", "features=hour"],
     ["invalid parameters for linear_regression v1.0: target: required"]),
    ("unknown parameter", ["explain", "quantiles", "--param", "column=amount", "--param", "qs=0.5"],
     ["q: required", "qs: not a parameter (did you mean 'q'?); the parameters are column, q, precision"]),
    ("wrong type", ["explain", "logistic_regression", "--param", "features=hour", "--param", "target=amount",
                    "--param", "iterations=many"], ["iterations: Input should be a valid integer"]),
    ("unknown analysis", ["explain", "linear_regresion"],
     ["no analysis named 'linear_regresion' (did you mean 'linear_regression'?); available: chi2"]),
    ("unknown version", ["explain", "describe", "--version", "9", "--param", "columns=amount"],
     ["analysis 'describe' has no version 9"]),
    # a categorical *feature* is one-hot encoded (tests/analytics/test_categorical.py); a categorical target is not
    ("categorical target", ["explain", "linear_regression", "--param", "features=amount", "--param", "target=channel"],
     ["column 'channel' is categorical"]),
    ("a param without =", ["explain", "describe", "--param", "columns"], ["columns: expected KEY=VALUE"]),
]


@pytest.mark.parametrize(("what", "args", "named"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_on_stderr(tmp_path, what, args, named):
    (tmp_path / "s.toml").write_text(CATEGORY_SCHEMA)
    _one_line_error(runner.invoke(app, [*args, "--schema", str(tmp_path / "s.toml")]), *named)


def test_an_invalid_schema_file_is_one_line_naming_the_file_and_field(tmp_path):
    (tmp_path / "bad.toml").write_text('[[columns]]\nname = "amount"\ntype = "money"\n')
    line = _one_line_error(runner.invoke(app, ["explain", "describe", "--schema", str(tmp_path / "bad.toml"),
                                               "--param", "columns=amount"]), "bad.toml is not valid", "columns.0.type")
    (tmp_path / "broken.toml").write_text("[[columns]\n")
    _one_line_error(runner.invoke(app, ["explain", "describe", "--schema", str(tmp_path / "broken.toml")]),
                    "cannot read the schema", "broken.toml")
    assert "Input should be 'float', 'int', 'bool' or 'category'" in line


def test_run_mistakes_are_one_line(tmp_path):
    files = _files(tmp_path)
    _one_line_error(runner.invoke(app, ["run", "linear_regression", *files, "--param", "features=hour",
                                        "--param", "target=amout", "--runtime", "threads"]), "no column 'amout'")
    _one_line_error(runner.invoke(app, ["run", "describe", *files, "--party", "c", "--param", "columns=amount"]),
                    "--party needs NAME=FILE, got 'c'")
    _one_line_error(runner.invoke(app, ["analyses", "lienar_regression"]), "no analysis named 'lienar_regression'")


def test_the_issues_examples_through_the_installed_entry_point(tmp_path):
    """`tessera run` with a misspelled target (a 35-line traceback) and `--param features=hour`
    (a raw pydantic ValidationError), through ``python -m tessera.cli`` as a user runs them."""
    import os
    import subprocess
    import sys

    files = _files(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)}

    def tessera(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tessera.cli", *args], capture_output=True, text=True, env=env,
                              timeout=300)

    typo = tessera("run", "linear_regression", *files, "--param", "features=hour", "--param", "target=amout",
                   "--runtime", "threads")
    assert typo.returncode == 1 and typo.stdout == "" and "Traceback" not in typo.stderr
    assert typo.stderr.splitlines() == ["error: no column 'amout'; columns are ['amount', 'hour']"]
    one = tessera("run", "linear_regression", *files, "--param", "features=hour", "--param", "target=amount",
                  "--runtime", "threads", "--json")
    assert one.returncode == 0, one.stderr
    out = json.loads(one.stdout)["outputs"]
    assert out["n"] == 6 and len(out["coefficients"]) == 2  # intercept and hour, a plain list
    assert tessera("--version").stdout.strip() == f"tessera {__import__('tessera').__version__}"


# --- one-item lists and numbers, read by the analysis's parameter model -------------------------

@pytest.mark.parametrize(("args", "shown"), [
    (["linear_regression", "--param", "features=hour", "--param", "target=amount"], "columns: hour, amount"),
    (["describe", "--param", "columns=amount"], "columns: amount"),
    (["quantiles", "--param", "column=amount", "--param", "q=0.5"], "columns: amount"),
    (["histogram", "--param", "column=hour", "--param", "edges=0,12,24"], "columns: hour"),
])
def test_one_item_lists_and_numbers_are_accepted(tmp_path, args, shown):
    (tmp_path / "s.toml").write_text(SCHEMA)
    res = runner.invoke(app, ["explain", *args, "--schema", str(tmp_path / "s.toml")])
    assert res.exit_code == 0, res.output
    assert shown in res.stdout.splitlines()[0]


# --- what the library offers, from the parameter models ------------------------------------------

def test_analyses_lists_every_analysis_with_its_parameters_types_defaults_and_release():
    from tessera import analytics
    from tessera.analytics.registry import catalogue

    res = runner.invoke(app, ["analyses"])
    assert res.exit_code == 0, res.output
    blocks = {b.splitlines()[0].split()[0]: b for b in res.stdout.strip().split("\n\n")}
    assert set(blocks) == set(analytics.available())
    for info in catalogue():
        block = blocks[info.name]
        assert f"{info.name} v{info.version}" in block and f"reveals: {info.reveals}" in block
        lines = {line.split()[0]: line for line in block.splitlines()[4:]}  # a line per parameter
        assert list(lines) == [p.name for p in info.params], block
        for p in info.params:
            assert f" {p.type}, {'required' if p.required else 'default '}" in lines[p.name], lines[p.name]
    lr = blocks["logistic_regression"]
    assert "list[str], required; at least 1 item" in lr and "int, default 8; >= 1, <= 50" in lr
    as_json = json.loads(runner.invoke(app, ["analyses", "--json"]).stdout)
    assert [a["name"] for a in as_json] == sorted(analytics.available())
    one = runner.invoke(app, ["analyses", "quantiles"])
    assert one.exit_code == 0 and one.stdout.startswith("quantiles v1.0") and "q  " in one.stdout


def test_explain_help_lists_the_analysis_parameters():
    res = runner.invoke(app, ["explain", "linear_regression", "--help"])
    assert res.exit_code == 0, res.output
    tail = res.stdout[res.stdout.index("linear_regression v"):]
    for name in ("features", "target", "ridge", "max_inverse", "max_rows"):
        assert f"\n    {name} " in tail, tail
    assert "reveals: " in tail
    plain = runner.invoke(app, ["explain", "--help"])
    assert plain.exit_code == 0 and "`tessera analyses` lists the analyses" in plain.stdout


def test_version_and_shell_completion():
    from tessera import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout == f"tessera {__version__}\n"
    top = runner.invoke(app, ["--help"])
    assert "--install-completion" in top.stdout and "--show-completion" in top.stdout
    for command in ("analyses", "run", "explain", "job"):
        assert command in top.stdout
