"""The ``tessera`` command: each group of subcommands lives in its own module.

A user's mistake ends in one line on stderr (``error: ...``) and exit status 1, never a
traceback: every :class:`~tessera.errors.TesseraError` a command raises is caught here
(:class:`_Tessera`), once, for every subcommand.

Fast start: a subcommand's module (and with it numpy, pandas, the node service, the analysis
library...) is imported only when that subcommand runs. :data:`COMMANDS` names each command's
module and its one-line help, which is what ``tessera --help`` lists without importing anything.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from tessera import __version__
from tessera.cli.errors import one_line
from tessera.errors import TesseraError

__all__ = ["app", "COMMANDS"]


class Entry(NamedTuple):
    """Where a subcommand lives: ``module.attribute`` is a ``typer.Typer`` (a group of
    subcommands) or a command function; ``help`` is the line ``tessera --help`` shows (the first
    paragraph of the command's own help: ``tests/cli/test_lazy_cli.py`` checks they agree)."""

    module: str
    attribute: str
    help: str
    cls: str | None = None  # the name of a TyperCommand subclass in ``module``


#: The commands that start party processes (``run_local``, ``run_cluster``): their fork server is
#: started before their module is imported (:mod:`tessera.runtime.forkserver`).
LAUNCHING = frozenset({"bench", "demo", "run", "cluster"})

#: The subcommands, in the order ``tessera --help`` lists them.
COMMANDS: dict[str, Entry] = {
    "bench": Entry("tessera.cli.bench", "bench",
                   "Run each workload under each protocol as separate processes over mutual TLS on loopback."),
    "demo": Entry("tessera.cli.demo", "demo",
                  "Three banks, each with its own transactions, compute the row count, mean and standard\n"
                  "deviation of the amount, and the correlation of amount with fraud, as separate processes\n"
                  "over mutual TLS; each result is printed next to the plaintext answer on the pooled data."),
    "run": Entry("tessera.cli.analyses", "run",
                 "Run ANALYSIS over the parties' files and print the result as tables (--json: plain JSON).",
                 cls="AnalysisCommand"),
    "explain": Entry("tessera.cli.analyses", "explain",
                     "Print the plan of ANALYSIS: local stage, secure stage, and exactly what it reveals.",
                     cls="AnalysisCommand"),
    "analyses": Entry("tessera.cli.analyses", "catalogue",
                      "List the analyses: what each computes and reveals, and its parameters with their types,\n"
                      "defaults and limits (from the analyses' own parameter models)."),
    "keys": Entry("tessera.cli.keys", "app", "Create party identities (Ed25519 key + certificate)."),
    "party": Entry("tessera.cli.party", "app", "Run one party of a session on this machine."),
    "cluster": Entry("tessera.cli.cluster", "app", "Local clusters of party processes (127.0.0.1, mutual TLS)."),
    "contract": Entry("tessera.cli.contract", "app", "Collaboration contracts: init, show, sign, verify."),
    "audit": Entry("tessera.cli.audit", "app", "Audit logs: verify chains and signatures, compare transcripts."),
    "node": Entry("tessera.cli.node", "app", "Set up and run a node (HTTPS API, jobs, MPC endpoint)."),
    "job": Entry("tessera.cli.job", "app", "Submit, follow and decide on jobs at a node."),
    "schema": Entry("tessera.cli.schema", "app",
                    "Draft schemas from data (the owners review them: bounds are public)."),
}


def load_command(name: str) -> Any:
    """The click command ``tessera NAME`` runs, built by typer exactly as if it were registered on
    the top-level app (``add_typer`` for a group, ``command`` for a function); imports its module."""
    entry = COMMANDS[name]
    module = importlib.import_module(entry.module)
    target = getattr(module, entry.attribute)
    holder = typer.Typer(rich_markup_mode=app.rich_markup_mode, pretty_exceptions_short=app.pretty_exceptions_short)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name, cls=getattr(module, entry.cls) if entry.cls else None)(target)
    return typer.main.get_group(holder).commands[name]


class _StandIn(TyperCommand):
    """A subcommand not loaded yet: its name and help line only."""


class _Tessera(TyperGroup):
    """The top-level group: a TesseraError from any subcommand is printed as one line.

    Its commands start as stand-ins carrying only the name and help of :data:`COMMANDS` (enough
    for ``--help``, completion of command names and "did you mean"); the command being run is
    replaced by the real one (:func:`load_command`) when click resolves it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, entry in COMMANDS.items():
            self.commands[name] = _StandIn(name, help=entry.help, rich_markup_mode=self.rich_markup_mode)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:  # click's Context
        if args and isinstance(self.commands.get(args[0]), _StandIn):
            if args[0] in LAUNCHING and "--help" not in args:
                # the fork server imports Tessera for the party processes while the command imports its module
                from tessera.runtime import forkserver

                forkserver.warm()
            self.commands[args[0]] = load_command(args[0])
        return super().resolve_command(ctx, args)

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
