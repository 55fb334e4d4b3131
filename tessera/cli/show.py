"""How ``tessera run`` and ``tessera job result`` show a result: rich tables for people (the
result object's summary, :mod:`tessera.analytics.results`), plain JSON for programs (``--json``:
lists and numbers, NaN as null), and a plot file (``--plot FILE.png|svg``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tessera import plots
from tessera.analytics.results import Result, Summary
from tessera.analytics.results import format_value as _fmt
from tessera.cli.options import JSON_OPTION, PLOT_OPTION

__all__ = ["show_result", "rich_tables", "JSON_OPTION", "PLOT_OPTION"]


def rich_tables(summary: Summary) -> list[Table]:
    """The summary as rich tables: its facts (two per row), then each of its tables."""
    facts = Table(title=summary.title, show_header=False, box=None, pad_edge=False)
    for _ in range(2):
        facts.add_column(style="bold")
        facts.add_column(justify="right")
    for i in range(0, len(summary.info), 2):
        pair = summary.info[i:i + 2]
        cells = [c for k, v in pair for c in (f"{k}:", _fmt(v))]
        facts.add_row(*cells, *([""] * (4 - len(cells))))
    out = [facts]
    for t in summary.tables:
        table = Table(title=t.title or None)
        table.add_column("")
        for c in t.columns:
            table.add_column(c, justify="right")
        for label, row in zip(t.index, t.rows):
            table.add_row(label, *(_fmt(v) for v in row))
        out.append(table)
    return out


def show_result(result: Result, as_json: bool, plot: Path | None, extra: dict[str, Any] | None = None) -> None:
    """Print ``result`` (rich tables, or ``--json``) and write its plot to ``plot`` if given."""
    if as_json:
        typer.echo(json.dumps({**result.to_dict(), **(extra or {})}, indent=2, allow_nan=False))
    else:
        console = Console(soft_wrap=False, width=max(100, Console().width))
        summary = result.summary()
        for t in rich_tables(summary):
            console.print(t)
        for note in summary.notes:
            console.print(f"note: {note}", highlight=False)
        for r in result.revealed:
            console.print(f"revealed: {r}", highlight=False)
    if plot is not None:
        path = plots.save(result.plot(), plot)
        typer.echo(f"plot written to {path}", err=True)
