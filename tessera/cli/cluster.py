"""``tessera cluster run``: a party program on n local processes over mutual TLS."""

from __future__ import annotations

import json

import typer

from tessera.errors import TesseraError
from tessera.runtime.cluster import run_cluster
from tessera.runtime.jsonable import to_plain

app = typer.Typer(no_args_is_help=True, help="Local clusters of party processes (127.0.0.1, mutual TLS).")


@app.command("run")
def run(
    program: str = typer.Argument("tessera.runtime.diagnostics:selftest", help="tessera.module:function"),
    parties: int = typer.Option(3, "--parties"),
    protocol: str = typer.Option("rep3", "--protocol"),
    args: str = typer.Option("{}", "--args", help="Keyword arguments for the program, as JSON."),
    timeout: float = typer.Option(300.0, "--timeout"),
) -> None:
    """Start the parties (and the dealer for semi2k) with fresh identities, run PROGRAM, and
    print every party's result and communication figures as JSON."""
    try:
        res = run_cluster(program, parties, protocol=protocol, args=json.loads(args), timeout=timeout)
    except (TesseraError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"results": to_plain(res.results), "comm": res.comm, "seconds": round(res.seconds, 3)}))
