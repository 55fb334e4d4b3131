"""The ``tessera`` command: each group of subcommands lives in its own module."""

from __future__ import annotations

import typer

from tessera.cli import keys

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tessera: secure multi-party analytics.")
app.add_typer(keys.app, name="keys")
