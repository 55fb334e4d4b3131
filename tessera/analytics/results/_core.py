"""The common surface of every result: :class:`Result`, its text/HTML :class:`Summary` and
:class:`Table`, and plain JSON values (:func:`plain`)."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tessera import plots

if TYPE_CHECKING:
    import pandas as pd

    from tessera.analytics.base import Plan
    from tessera.data.schema import Schema

__all__ = ["INTERCEPT", "WIDTH", "Result", "Summary", "Table", "plain", "format_value", "pandas", "scipy_stats",
           "flatten", "vector", "guarantee"]

#: The name of a regression's intercept in every result (as statsmodels' ``add_constant``).
INTERCEPT = "const"

#: Width of a text summary (statsmodels': 78).
WIDTH = 78


def plain(obj: Any) -> Any:
    """A JSON-able copy of ``obj``: arrays and tuples as (nested) lists, numpy scalars as Python
    numbers, NaN and infinities as ``None``."""
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def format_value(v: Any) -> str:
    """One cell of a text table (statsmodels-like: 4 significant decimals, scientific when tiny or large)."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if not math.isfinite(x):
            return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if x == 0:
            return "0.0000"
        if abs(x) >= 1e6 or abs(x) < 1e-4:
            return f"{x:.3e}"
        return f"{x:.4f}"
    if isinstance(v, (tuple, list)) and len(v) <= 4:
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    return str(v)


_fmt = format_value


@dataclass(frozen=True)
class Table:
    """One table of a summary: a header, row labels and cells (raw values; formatted when shown)."""

    columns: list[str]
    index: list[str]
    rows: list[list[Any]]
    title: str = ""


@dataclass(frozen=True)
class Summary:
    """A statsmodels-like summary: a title, a block of facts (two per line) and tables. ``str()``
    is the text, ``_repr_html_`` the same as HTML; ``info`` and ``tables`` hold the values."""

    title: str
    info: list[tuple[str, Any]]
    tables: list[Table]
    notes: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        rule, thin = "=" * WIDTH, "-" * WIDTH
        lines = [self.title.center(WIDTH).rstrip(), rule]
        half = WIDTH // 2
        cells = [f"{k + ':':<{half - 1 - len(_fmt(v))}}{_fmt(v)}" if len(k) + len(_fmt(v)) < half - 2
                 else f"{k}: {_fmt(v)}" for k, v in self.info]
        for i in range(0, len(cells), 2):
            pair = cells[i:i + 2]
            lines.append((pair[0].ljust(half) + (pair[1] if len(pair) > 1 else "")).rstrip())
        for t in self.tables:
            lines.append(rule)
            if t.title:
                lines += [t.title.center(WIDTH).rstrip(), thin]
            body = [[_fmt(v) for v in row] for row in t.rows]
            first = max([len(s) for s in t.index] + [8])
            widths = [max([len(c) + 1, 10] + [len(r[j]) + 1 for r in body]) for j, c in enumerate(t.columns)]
            lines.append(" " * first + "".join(c.rjust(w) for c, w in zip(t.columns, widths)))
            lines.append(thin)
            lines += [label.ljust(first) + "".join(s.rjust(w) for s, w in zip(r, widths))
                      for label, r in zip(t.index, body)]
        lines.append(rule)
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        esc = html.escape
        out = [f"<table class='tessera-summary'><caption>{esc(self.title)}</caption>"]
        out += [f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(_fmt(v))}</td></tr>" for k, v in self.info]
        out.append("</table>")
        for t in self.tables:
            out.append("<table class='tessera-summary'>" + (f"<caption>{esc(t.title)}</caption>" if t.title else ""))
            out.append("<tr><th></th>" + "".join(f"<th>{esc(c)}</th>" for c in t.columns) + "</tr>")
            out += ["<tr><th style='text-align:left'>" + esc(label) + "</th>" +
                    "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>" for label, row in zip(t.index, t.rows)]
            out.append("</table>")
        out += [f"<p>Note: {esc(n)}</p>" for n in self.notes]
        return "".join(out)


def pandas() -> Any:
    import pandas  # imported where used: a party process never builds a result

    return pandas


def scipy_stats() -> Any:
    from scipy import stats  # imported where used (about 1 s)

    return stats


class Result:
    """The released outputs of one job of ``analysis``, as a recipient received them.

    ``outputs`` are the raw outputs (``result[name]`` reads one), ``job_params`` the job's
    validated parameters, ``revealed`` what it revealed to whom, ``plan`` the plan's text (``plan_object``
    the :class:`~tessera.analytics.base.Plan` where it is known). Subclasses name the estimates.
    """

    #: the title of :meth:`summary`
    title: ClassVar[str] = "Results"

    def __init__(self, analysis: str, version: str, outputs: Mapping[str, Any], params: Mapping[str, Any], *,
                 revealed: Sequence[str] = (), plan: str = "", plan_object: Plan | None = None,
                 schema: Schema | None = None) -> None:
        self.analysis = analysis
        self.version = version
        self.outputs = dict(outputs)
        self.job_params = dict(params)
        self.revealed = list(revealed)
        self.plan = plan
        self.plan_object = plan_object
        self.schema = schema

    def __getitem__(self, key: str) -> Any:
        return self.outputs[key]

    def __contains__(self, key: object) -> bool:
        return key in self.outputs

    # -- what subclasses describe -----------------------------------------------------------

    def info(self) -> list[tuple[str, Any]]:
        """The facts block of :meth:`summary` (label, value)."""
        return [("Analysis", f"{self.analysis} v{self.version}")]

    def tables(self) -> list[Table]:
        """The tables of :meth:`summary`. The generic result: one row per output."""
        flat = flatten(self.outputs)
        return [Table(["value"], list(flat), [[_cell(v)] for v in flat.values()])] if flat else []

    def notes(self) -> list[str]:
        return []

    def headline(self) -> str:
        """The few words of the ``repr``."""
        return ", ".join(f"{k}={_fmt(v)}" for k, v in list(flatten(self.outputs).items())[:4]
                         if not isinstance(v, (list, dict)))

    # -- the common surface -----------------------------------------------------------------

    def summary(self) -> Summary:
        """A statsmodels-like summary of the result (``print(result.summary())``)."""
        return Summary(self.title, self.info(), self.tables(), self.notes())

    def to_frame(self) -> pd.DataFrame:
        """The main table of the result as a pandas DataFrame."""
        tables = self.tables()
        if not tables:
            return pandas().DataFrame()
        t = tables[0]
        return pandas().DataFrame(t.rows, index=t.index, columns=t.columns)

    def to_dict(self) -> dict[str, Any]:
        """Analysis, version, the outputs and what was revealed, as plain JSON-able values (no
        ``__ndarray__`` wrappers: arrays are lists, NaN is ``None``)."""
        return {"analysis": self.analysis, "version": self.version, "outputs": plain(self.outputs),
                "revealed": list(self.revealed)}

    def plot(self, ax: Any = None) -> Any:
        """A plot of the result on ``ax`` (a new figure if None); returns the axes. Needs
        matplotlib (``pip install tessera[plots]``)."""
        raise plots.PlotError(f"{self.analysis} results have no plot")

    def __repr__(self) -> str:
        head = self.headline()
        return f"<{type(self).__name__} {self.analysis} v{self.version}" + (f": {head}>" if head else ">")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def flatten(outputs: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in outputs.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _cell(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return ", ".join(_fmt(x) for x in v.reshape(-1)) if v.size <= 8 else f"array of shape {v.shape}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v) if len(v) <= 8 else f"{len(v)} values"
    return v


def vector(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(-1)


def guarantee(outputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The DP guarantee's epsilon and delta (for the facts block), if the outputs carry one."""
    g = outputs.get("guarantee")
    if not isinstance(g, Mapping):
        return []
    return [("DP epsilon", g.get("epsilon")), ("DP delta", g.get("delta"))]
