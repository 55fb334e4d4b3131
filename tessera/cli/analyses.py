"""``tessera run``, ``tessera explain`` and ``tessera analyses``: analyses from the library over
local party data, their plans, and what each takes and reveals.

Parameters are read by the analysis's own parameter model (:mod:`tessera.cli.params`), so
``--param features=hour`` is the one-item list ``["hour"]`` and ``--param q=0.5`` a number;
``tessera explain ANALYSIS --help`` and ``tessera analyses ANALYSIS`` list them.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperCommand

from tessera import analytics
from tessera.analytics import registry
from tessera.data.schema import Schema
from tessera.errors import PlanError
from tessera.execution.steps import plan_analysis as make_plan
from tessera.jobs.local import run_local
from tessera.runtime.jsonable import to_plain

from .params import read_params
from .progress import JobProgress
from .show import JSON_OPTION, PLOT_OPTION, show_result

__all__ = ["run", "explain", "catalogue", "AnalysisCommand", "analysis_help"]


def _schema(path: Path) -> Schema:
    """The schema in ``path`` (TOML or JSON); PlanError naming the file and every problem."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        return Schema.model_validate(data)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        raise PlanError(f"cannot read the schema {path}: {e}") from None
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(schema)'}: {err['msg']}"
                             for err in e.errors())
        raise PlanError(f"the schema {path} is not valid: {problems}") from None
    except ValueError as e:  # the schema's own checks (duplicate column names, ...)
        raise PlanError(f"the schema {path} is not valid: {e}") from None


def _params(analysis: str, version: str | None, items: list[str]) -> dict[str, Any]:
    """The ``--param`` items read by ``analysis``'s parameter model (PlanError for an unknown
    analysis, naming the closest one)."""
    return read_params(analytics.get(analysis, version).params_model, items)


def _parties(items: list[str]) -> dict[str, str]:
    out = {}
    for p in items:
        name, sep, file = p.partition("=")
        if not sep or not name or not file:
            raise PlanError(f"--party needs NAME=FILE, got {p!r}")
        out[name] = file
    return out


_PARAM_HELP = "KEY=VALUE analysis parameter, repeat (lists: a,b or one item; see `tessera analyses ANALYSIS`)."


def run(
    analysis: str = typer.Argument(..., help="Analysis name, e.g. describe, correlation, linear_regression."),
    party: list[str] = typer.Option(..., "--party", help="NAME=FILE (CSV or Parquet); one per party."),
    schema: Path = typer.Option(..., "--schema", exists=True, help="Schema of the columns (TOML or JSON)."),
    param: list[str] = typer.Option([], "--param", help=_PARAM_HELP),
    version: str = typer.Option(None, "--version", help="Analysis version (default: the newest)."),
    protocol: str = typer.Option(None, "--protocol", help="semi2k or rep3 (default: rep3 for 3 parties)."),
    partition: str = typer.Option("horizontal", "--partition"),
    runtime: str = typer.Option("cluster", "--runtime", help="cluster (separate processes, TLS) or threads."),
    as_json: bool = JSON_OPTION,
    plot: Path = PLOT_OPTION,
) -> None:
    """Run ANALYSIS over the parties' files and print the result as tables (--json: plain JSON)."""
    parties = _parties(party)
    params = _params(analysis, version, param)
    with JobProgress(analysis) as bar:  # on stderr: stdout keeps the results
        res = run_local(analysis, parties, _schema(schema), protocol=protocol, partition=partition, version=version,
                        runtime=runtime, progress=bar.update, **params)
    show_result(res.result, as_json, plot, {"seconds": round(res.seconds, 3)})


def explain(
    analysis: str = typer.Argument(..., help="Analysis name (`tessera analyses` lists them)."),
    schema: Path = typer.Option(..., "--schema", exists=True, help="Schema of the columns (TOML or JSON)."),
    param: list[str] = typer.Option([], "--param", help=_PARAM_HELP),
    version: str = typer.Option(None, "--version", help="Analysis version (default: the newest)."),
    parties: int = typer.Option(3, "--parties"),
    partition: str = typer.Option("horizontal", "--partition"),
) -> None:
    """Print the plan of ANALYSIS: local stage, secure stage, and exactly what it reveals."""
    _, _, plan = make_plan(analysis, version, _params(analysis, version, param), _schema(schema), partition,
                           [f"P{i}" for i in range(parties)])
    typer.echo(plan.explain())


def analysis_help(info: registry.AnalysisInfo) -> str:
    """One analysis as text: what it computes and reveals, then a line per parameter."""
    lines = [f"{info.name} v{info.version} ({', '.join(info.partitions)} partitioning)",
             f"  {info.summary}", f"  reveals: {info.reveals}", "  parameters:"]
    width = max((len(p.name) for p in info.params), default=0)
    for p in info.params:
        need = "required" if p.required else f"default {json.dumps(to_plain(p.default))}"
        extra = "; ".join(x for x in (p.constraints, p.description) if x)
        lines.append(f"    {p.name:<{width}}  {p.type}, {need}" + (f"; {extra}" if extra else ""))
    return "\n".join(lines)


def catalogue(
    analysis: str = typer.Argument(None, help="One analysis (default: every analysis of the library)."),
    as_json: bool = typer.Option(False, "--json", help="As JSON, for programs."),
) -> None:
    """List the analyses: what each computes and reveals, and its parameters with their types,
    defaults and limits (from the analyses' own parameter models)."""
    infos = [registry.describe(analysis)] if analysis else registry.catalogue()
    if as_json:
        typer.echo(json.dumps([to_plain(i.to_dict()) for i in infos], indent=2))
        return
    typer.echo("\n\n".join(analysis_help(i) for i in infos))


class AnalysisCommand(TyperCommand):
    """A command whose first argument names an analysis: ``--help`` then also lists that
    analysis's parameters."""

    # ctx is click's Context (typer >= 0.20 vendors its own click, older ones use click's)
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        ctx.meta["tessera.args"] = list(args)
        out: list[str] = super().parse_args(ctx, args)
        return out

    def get_help(self, ctx: Any) -> str:
        text: str = super().get_help(ctx)  # (rich help is printed here, and the text is empty)
        known = registry.available()
        name = next((a for a in ctx.meta.get("tessera.args", []) if a in known), None)
        if name is None:
            return text + "\n`tessera analyses` lists the analyses and their parameters."
        return text + "\n" + analysis_help(registry.describe(name))
