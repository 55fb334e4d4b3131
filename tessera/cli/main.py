"""The ``tessera`` command: each group of subcommands lives in its own module.

A user's mistake ends in one line on stderr (``error: ...``) and exit status 1, never a
traceback: every :class:`~tessera.errors.TesseraError` a command raises is caught here
(:class:`_Tessera`), once, for every subcommand.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from tessera import __version__
from tessera.cli import analyses, audit, bench, cluster, contract, demo, job, keys, node, party, schema
from tessera.cli.errors import one_line
from tessera.errors import TesseraError

__all__ = ["app"]


class _Tessera(TyperGroup):
    """The top-level group: a TesseraError from any subcommand is printed as one line."""

    def invoke(self, ctx: Any) -> Any:  # click's Context (vendored by typer >= 0.20)
        try:
            return super().invoke(ctx)
        except TesseraError as e:
            typer.echo(one_line(e), err=True)
            raise typer.Exit(1) from None


app = typer.Typer(cls=_Tessera, no_args_is_help=True, add_completion=True,
                  help="Tessera: secure multi-party analytics.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tessera {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                        help="Print Tessera's version and exit.")) -> None:
    """Tessera: secure multi-party analytics."""


app.add_typer(keys.app, name="keys")
app.add_typer(party.app, name="party")
app.add_typer(cluster.app, name="cluster")
app.add_typer(contract.app, name="contract")
app.add_typer(audit.app, name="audit")
app.add_typer(node.app, name="node")
app.add_typer(job.app, name="job")
app.add_typer(schema.app, name="schema")
app.command("bench")(bench.bench)
app.command("demo")(demo.demo)
app.command("run", cls=analyses.AnalysisCommand)(analyses.run)
app.command("explain", cls=analyses.AnalysisCommand)(analyses.explain)
app.command("analyses")(analyses.catalogue)
