"""`tessera run` and `tessera job result` print results as tables; --json is plain JSON."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tessera.cli import job as job_cli
from tessera.cli.main import app

runner = CliRunner()
SCHEMA = ('[[columns]]\nname = "amount"\ntype = "float"\nmin = 0\nmax = 100\n'
          '[[columns]]\nname = "hour"\ntype = "int"\nmin = 0\nmax = 23\n')


def _files(tmp_path):
    (tmp_path / "s.toml").write_text(SCHEMA)
    args = ["--schema", str(tmp_path / "s.toml")]
    for name, rows in (("a", "10,1\n21,2\n29,3\n"), ("b", "41,4\n50,5\n62,6\n")):
        (tmp_path / f"{name}.csv").write_text("amount,hour\n" + rows)
        args += ["--party", f"{name}={tmp_path / f'{name}.csv'}"]
    return args


def test_run_prints_a_regression_as_tables(tmp_path):
    """(``run --json`` as plain lists: tests/cli/test_cli.py)"""
    args = ["run", "linear_regression", *_files(tmp_path), "--param", "features=hour", "--param", "target=amount",
            "--runtime", "threads"]
    shown = runner.invoke(app, args, terminal_width=120)
    assert shown.exit_code == 0, shown.output
    for label in ("OLS Regression Results", "Dep. Variable:", "amount", "No. Observations:", "R-squared:",
                  "coef", "std err", "P>|t|", "[0.025", "0.975]", "const", "hour", "revealed: coefficients"):
        assert label in shown.output, label
    assert "__ndarray__" not in shown.output and "secure stage" not in shown.output


class _Node:
    """A node's answers for one released correlation job (what the client returns)."""

    def status(self, job_id):
        return {"id": job_id, "analysis": "correlation", "version": "1.0", "params": {"columns": ["x", "y"]},
                "plan": "correlation v1.0 ...", "revealed": ["count -> all recipients"]}

    def result(self, job_id):
        return {"job_id": job_id, "outputs": {"count": 40, "columns": ["x", "y"],
                                              "correlation": np.array([[1.0, 0.25], [0.25, 1.0]])},
                "revealed": ["count -> all recipients", "correlation -> all recipients"]}


@pytest.fixture
def node(monkeypatch):
    monkeypatch.setattr(job_cli, "_client", lambda profile: _Node())


def test_job_result_prints_tables_and_plain_json(node):
    shown = runner.invoke(app, ["job", "result", "j1"], terminal_width=120)
    assert shown.exit_code == 0, shown.output
    assert "Correlation Matrix" in shown.output and "0.2500" in shown.output and "No. Observations:" in shown.output
    out = json.loads(runner.invoke(app, ["job", "result", "j1", "--json"]).output)
    assert out["outputs"]["correlation"] == [[1.0, 0.25], [0.25, 1.0]] and out["job_id"] == "j1"
    assert out["revealed"] == ["count -> all recipients", "correlation -> all recipients"]


def test_job_result_plot_of_a_result_without_one_is_one_line(node, tmp_path):
    res = runner.invoke(app, ["job", "result", "j1", "--plot", str(tmp_path / "c.png")])
    assert res.exit_code == 1 and "correlation results have no plot" in res.output
    assert "Traceback" not in res.output
