"""``tessera run`` and ``tessera explain``: analyses from the library over local party data."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import typer

from tessera.data.schema import Schema
from tessera.errors import TesseraError
from tessera.execution.steps import plan_analysis as make_plan
from tessera.jobs.local import run_local
from tessera.runtime.jsonable import to_plain


def _schema(path: Path) -> Schema:
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    return Schema.model_validate(data)


def _params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--param needs KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value.split(",") if "," in value else value
    return out


def run(
    analysis: str = typer.Argument(..., help="Analysis name, e.g. describe, correlation, linear_regression."),
    party: list[str] = typer.Option(..., "--party", help="NAME=FILE (CSV or Parquet); one per party."),
    schema: Path = typer.Option(..., "--schema", exists=True, help="Schema of the columns (TOML or JSON)."),
    param: list[str] = typer.Option([], "--param", help="KEY=VALUE analysis parameter (VALUE as JSON, or a,b list)."),
    protocol: str = typer.Option(None, "--protocol", help="semi2k or rep3 (default: rep3 for 3 parties)."),
    partition: str = typer.Option("horizontal", "--partition"),
    runtime: str = typer.Option("cluster", "--runtime", help="cluster (separate processes, TLS) or threads."),
) -> None:
    """Run ANALYSIS over the parties' files and print the released outputs as JSON."""
    parties = {}
    for p in party:
        name, sep, file = p.partition("=")
        if not sep:
            raise typer.BadParameter(f"--party needs NAME=FILE, got {p!r}")
        parties[name] = file
    try:
        res = run_local(analysis, parties, _schema(schema), protocol=protocol, partition=partition,
                        runtime=runtime, **_params(param))
    except TesseraError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps({"outputs": to_plain(res.outputs), "revealed": res.revealed,
                           "seconds": round(res.seconds, 3)}, indent=2))


def explain(
    analysis: str = typer.Argument(...),
    schema: Path = typer.Option(..., "--schema", exists=True),
    param: list[str] = typer.Option([], "--param"),
    parties: int = typer.Option(3, "--parties"),
    partition: str = typer.Option("horizontal", "--partition"),
) -> None:
    """Print the plan of ANALYSIS: local stage, secure stage, and exactly what it reveals."""
    try:
        _, _, plan = make_plan(analysis, None, _params(param), _schema(schema), partition,
                               [f"P{i}" for i in range(parties)])
    except (TesseraError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(plan.explain())
