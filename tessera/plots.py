"""Plots of released results and of a party's own data (matplotlib, the optional extra ``plots``:
``pip install tessera[plots]``).

Every function draws public values only: what a job released (pooled estimates, bin counts,
coefficients and their intervals), or a party's own rows scored by a fitted model
(:func:`roc`). Each draws on ``ax`` (a new figure when None) and returns the axes; :func:`save`
writes a figure to PNG or SVG. Result objects call these from their ``plot()``
(:mod:`tessera.analytics.results`). matplotlib is imported when a plot is first drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.errors import TesseraError

__all__ = ["PlotError", "forest", "coefficients", "bars", "roc", "save"]


class PlotError(TesseraError):
    """A plot cannot be drawn: matplotlib is missing, or the result has nothing to plot."""


def _pyplot() -> Any:
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg", "svg", "pdf") and not _interactive():
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("plots need matplotlib: pip install tessera[plots]") from None
    return plt


def _interactive() -> bool:
    import sys

    return "ipykernel" in sys.modules or hasattr(sys, "ps1")


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    _, new = _pyplot().subplots(figsize=size)
    return new


def forest(labels: Sequence[str], estimates: Sequence[float], lower: Sequence[float], upper: Sequence[float], *,
           ax: Any = None, pooled: Sequence[bool] | None = None, null: float = 0.0, title: str = "") -> Any:
    """A forest plot: one row per estimate with its interval, pooled estimates drawn as
    diamonds (per-study rows as squares), and a dashed line at ``null``."""
    n = len(labels)
    ax = _axes(ax, (7.0, 1.2 + 0.6 * n))
    pooled = list(pooled) if pooled is not None else [False] * n
    ys = np.arange(n)[::-1]
    for y, est, lo, hi, big in zip(ys, estimates, lower, upper, pooled):
        if big:
            ax.fill([lo, est, hi, est], [y, y + 0.25, y, y - 0.25], color="#1f4e79", zorder=3)
        else:
            ax.plot([lo, hi], [y, y], color="#333333", lw=1.5)
            ax.plot([est], [y], "s", color="#1f4e79", ms=7, zorder=3)
        ax.annotate(f"{est:.3g} [{lo:.3g}, {hi:.3g}]", (1.01, y), xycoords=("axes fraction", "data"),
                    va="center", fontsize=9)
    ax.axvline(null, color="#999999", ls="--", lw=1)
    ax.set_yticks(ys, list(labels))
    ax.set_ylim(-0.8, n - 0.2)
    ax.set_xlabel("effect")
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax


def coefficients(names: Sequence[str], estimates: npt.ArrayLike, lower: npt.ArrayLike | None,
                 upper: npt.ArrayLike | None, *, ax: Any = None, title: str = "") -> Any:
    """A coefficient plot: each coefficient as a point with its interval (when given), a dashed
    line at 0."""
    est = np.asarray(estimates, dtype=np.float64)
    n = len(names)
    ax = _axes(ax, (7.0, 1.2 + 0.5 * n))
    ys = np.arange(n)[::-1]
    if lower is not None and upper is not None:
        lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        ax.errorbar(est, ys, xerr=[est - lo, hi - est], fmt="o", color="#1f4e79", ecolor="#555555", capsize=4)
        labels = [f"{e:.3g} [{a:.3g}, {b:.3g}]" for e, a, b in zip(est, lo, hi)]
    else:
        ax.plot(est, ys, "o", color="#1f4e79")
        labels = [f"{e:.3g}" for e in est]
    for y, text in zip(ys, labels):  # the values too: coefficients in different units differ in scale
        ax.annotate(text, (1.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=9)
    ax.axvline(0.0, color="#999999", ls="--", lw=1)
    ax.set_yticks(ys, list(names))
    ax.set_ylim(-0.8, n - 0.2)
    ax.set_xlabel("coefficient")
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax


def bars(edges: Sequence[float], counts: Sequence[float | None], *, ax: Any = None, title: str = "") -> Any:
    """Histogram bars over the public ``edges``; a bin whose count was suppressed (None) is
    left empty and marked with an ``x``."""
    e = np.asarray(edges, dtype=np.float64)
    if len(e) != len(counts) + 1:
        raise PlotError(f"{len(counts)} counts need {len(counts) + 1} edges, not {len(e)}")
    ax = _axes(ax, (7.0, 4.0))
    heights = np.array([0.0 if c is None else float(c) for c in counts])
    ax.bar(e[:-1], heights, width=np.diff(e), align="edge", color="#1f4e79", edgecolor="white")
    for i, c in enumerate(counts):
        if c is None:
            ax.plot([(e[i] + e[i + 1]) / 2], [0], "x", color="#c00000")
    ax.set_ylabel("count")
    if title:
        ax.set_xlabel(title)
    ax.figure.tight_layout()
    return ax


def roc(y_true: npt.ArrayLike, score: npt.ArrayLike, *, ax: Any = None, title: str = "") -> Any:
    """The ROC curve of ``score`` against the 0/1 labels ``y_true`` (a party's own holdout rows,
    scored locally), with its AUC in the legend."""
    y = np.asarray(y_true, dtype=np.float64) > 0.5
    s = np.asarray(score, dtype=np.float64)
    if y.all() or not y.any():
        raise PlotError("an ROC curve needs rows of both classes")
    order = np.argsort(-s, kind="mergesort")
    ys, ss = y[order], s[order]
    distinct = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]
    tpr = np.r_[0.0, np.cumsum(ys)[distinct] / ys.sum()]
    fpr = np.r_[0.0, np.cumsum(~ys)[distinct] / (~ys).sum()]
    auc = float(np.trapezoid(tpr, fpr))
    ax = _axes(ax, (5.0, 5.0))
    ax.plot(fpr, tpr, color="#1f4e79", lw=2, label=f"AUC = {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="#999999", ls="--", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title, fontsize=10)
    ax.figure.tight_layout()
    return ax


def save(ax: Any, path: str | Path) -> Path:
    """Write the figure of ``ax`` to ``path`` (PNG or SVG, by its suffix)."""
    out = Path(path)
    if out.suffix.lower() not in (".png", ".svg"):
        raise PlotError(f"write plots as .png or .svg, not {out.name!r}")
    try:
        ax.figure.savefig(out, dpi=120)
    except OSError as e:
        raise PlotError(f"cannot write the plot {out}: {e.strerror or e}") from None
    _pyplot().close(ax.figure)
    return out
