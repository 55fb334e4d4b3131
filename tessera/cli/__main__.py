"""``python -m tessera.cli``: the ``tessera`` command (as the installed script runs it)."""

from tessera.cli.main import app

app(prog_name="tessera")
