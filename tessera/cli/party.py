"""``tessera party run``: one party (or the dealer) of a session, from a config file."""

from __future__ import annotations

from pathlib import Path

import typer

from tessera.runtime import party as party_process

app = typer.Typer(no_args_is_help=True, help="Run one party of a session on this machine.")


@app.command("run")
def run(config: Path = typer.Option(..., "--config", exists=True, dir_okay=False, help="Party config (JSON).")) -> None:
    """Join the session described by CONFIG over mutual TLS and run its program."""
    raise typer.Exit(party_process.main([str(config)]))
