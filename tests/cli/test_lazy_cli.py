"""``tessera`` loads a subcommand's module only when it runs: the registry's help lines are the
commands' own, and the loaded command is the one typer builds from the module."""

import inspect

import pytest
from typer.testing import CliRunner

from tessera.cli.main import COMMANDS, app, load_command

runner = CliRunner()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_registry_help_line_is_the_commands_own(name):
    command = load_command(name)
    assert command.name == name
    assert COMMANDS[name].help == inspect.cleandoc(command.help).split("\n\n")[0]


def test_the_top_level_help_lists_the_commands_in_registry_order():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0, res.output
    positions = [res.output.index(f"│ {name} ") for name in COMMANDS]
    assert positions == sorted(positions)


def test_a_mistyped_command_still_suggests_the_right_one():
    res = runner.invoke(app, ["nod"])
    assert res.exit_code == 2
    assert "No such command 'nod'. Did you mean 'node'?" in res.output


def test_job_commands_load_the_analyses_only_for_a_result():
    """``tessera job submit/status/list/...`` talk to a node; only ``result`` formats a result
    (the analyses, and the sealed-result code that decodes with them, load there)."""
    import subprocess
    import sys

    code = ("import sys; from tessera.cli.main import load_command; load_command('job'); "
            "import tessera.node.client; "
            "print(sorted(m for m in ('tessera.analytics', 'tessera.jobs.sealed', 'tessera.mpc') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
