"""``tessera bench --rtt/--bandwidth`` (a session through the relay: tests/runtime/test_relay.py)."""

from typer.testing import CliRunner

from tessera.cli.main import app

runner = CliRunner()


def test_bench_refuses_a_link_it_cannot_read():
    res = runner.invoke(app, ["bench", "--workload", "mul", "--rtt", "20 parsecs"])
    assert res.exit_code == 2
    assert "cannot read the duration '20 parsecs'" in res.output
