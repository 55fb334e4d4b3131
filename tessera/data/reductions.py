"""The reductions analyses push into a party's engine, written once as SQL both engines run.

A party's local stage reduces its rows where they are: DuckDB (embedded, the default) or Spark
(a cluster, :mod:`tessera.data.spark`). Each reduction here is one ``SELECT`` of aggregates over
the checked relation, in the SQL both dialects share (double-quoted identifiers — Spark with
``spark.sql.ansi.doubleQuotedIdentifiers`` — ``CAST('..' AS DOUBLE)`` literals, ``CASE``, ``exp``,
``sum``, ``count``), so one builder serves both engines and their results agree to float64
rounding. Only aggregates ever leave the engine:

* :func:`cross_products_sql` — ``n`` and ``Z'Z`` for ``Z = [1, scaled columns]``;
* :func:`histogram_sql` — rows per public bin, as ``numpy.histogram`` (last bin closed);
* :func:`contingency_sql` — rows per pair of category levels;
* :func:`glm_sql` — a GLM's gradient and Hessian at a public iterate (the hybrid regressions,
  :mod:`tessera.analytics.glm_hybrid`).

:class:`GlmDesign` computes :func:`glm_sql`'s sums in numpy instead, over a design read from
the engine once and kept in memory (DuckDB's tables below their memory limit): one pass per
iterate in cache-sized blocks (:data:`GLM_BLOCK` rows), BLAS for ``X' W X``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

from tessera.data._sql import ident, number

__all__ = ["Family", "Scaling", "GlmDerivatives", "GlmDesign", "GLM_BLOCK", "scaled", "cross_products_sql",
           "histogram_sql", "contingency_sql", "glm_sql", "glm_design_sql", "glm_result", "gram_result"]

#: GLM families with their canonical links: logistic (logit) and Poisson (log).
Family = Literal["logistic", "poisson"]
#: column -> (center, half width): the value used is ``(x - center) / half``
Scaling = Mapping[str, tuple[float, float]]


def scaled(column: str, scaling: Scaling | None) -> str:
    """The SQL value of ``column``, scaled where ``scaling`` names it."""
    if scaling is not None and column in scaling:
        center, half = scaling[column]
        return f"(({ident(column)} - {number(center)}) / {number(half)})"
    return ident(column)


def _pairs(k: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(k) for j in range(i, k)]


def cross_products_sql(relation: str, columns: Sequence[str], scaling: Scaling | None, where: str) -> str:
    """``count(*)``, then ``sum(z_i z_j)`` for ``i <= j`` over ``z = [1, columns]`` (scaled)."""
    inner = ", ".join(f"{scaled(c, scaling)} AS {ident(f't{i}')}" for i, c in enumerate(columns)) or "1 AS t_"
    z = ["1"] + [ident(f"t{i}") for i in range(len(columns))]
    aggs = ["count(*)"] + [f"sum({z[i]} * {z[j]})" for i, j in _pairs(len(z)) if (i, j) != (0, 0)]
    return f"SELECT {', '.join(aggs)} FROM (SELECT {inner} FROM {relation} WHERE {where}) AS q"


def gram_result(row: Sequence[object], k: int) -> tuple[int, npt.NDArray[np.float64]]:
    """``(n, Z'Z)`` (``k = 1 + columns`` square, symmetric) from :func:`cross_products_sql`'s row."""
    n = int(row[0])  # type: ignore[call-overload]
    vals = [float(n)] + [0.0 if v is None else float(v) for v in row[1:]]  # type: ignore[arg-type]
    out = np.zeros((k, k))
    for (i, j), v in zip(_pairs(k), vals):
        out[i, j] = out[j, i] = v
    return n, out


def histogram_sql(relation: str, column: str, edges: Sequence[float], where: str) -> str:
    """Rows per bin ``[e_i, e_{i+1})``, the last bin closed — ``numpy.histogram``'s bins."""
    x = ident(column)
    e = [number(v) for v in edges]
    last = len(e) - 2
    aggs = [f"count_if({x} >= {e[i]} AND {x} {'<=' if i == last else '<'} {e[i + 1]})" for i in range(len(e) - 1)]
    return f"SELECT {', '.join(aggs)} FROM {relation} WHERE {where}"


def contingency_sql(relation: str, a: str, b: str, where: str) -> str:
    """Rows per pair of (level index of ``a``, level index of ``b``)."""
    return (f"SELECT {ident(a)}, {ident(b)}, count(*) FROM {relation} WHERE {where} "
            f"GROUP BY {ident(a)}, {ident(b)}")


def glm_sql(relation: str, features: Sequence[str], target: str, beta: Sequence[float], family: Family,
            scaling: Scaling | None, target_scale: float, offset: float, where: str) -> str:
    """One scan for a GLM's derivatives at the public iterate ``beta`` (intercept first) over
    ``x = [1, scaled features]`` and ``y = target / target_scale``:

    * logistic: ``s = sigmoid(x'beta)``, residual ``s - y``, weight ``s (1 - s)``;
    * Poisson: ``mu = exp(x'beta - offset)``, residual ``mu - y e^-offset``, weight ``mu`` (the
      derivatives divided by ``e^offset``: a Newton step ``H^-1 g`` does not change).

    Returns ``count(*)``, ``sum(residual * x_j)`` and ``sum(weight * x_i * x_j)`` (``i <= j``).
    """
    k = len(features) + 1
    cols = [f"{scaled(c, scaling)} AS {ident(f'x{i + 1}')}" for i, c in enumerate(features)]
    cols.append(f"(CAST({ident(target)} AS DOUBLE) / {number(target_scale)}) AS {ident('y')}")
    eta = " + ".join([number(beta[0])] + [f"{number(b)} * {ident(f'x{i + 1}')}" for i, b in enumerate(beta[1:])])
    xs = [ident(f"x{i + 1}") for i in range(k - 1)]
    passthrough = ", ".join([*xs, ident("y")])
    if family == "logistic":
        link = (f"(CASE WHEN {ident('eta')} >= 0 THEN 1 / (1 + exp(-{ident('eta')})) "
                f"ELSE exp({ident('eta')}) / (1 + exp({ident('eta')})) END) AS {ident('m')}")
        resid, weight = f"{ident('m')} - {ident('y')}", f"{ident('m')} * (1 - {ident('m')})"
    else:
        link = f"exp({ident('eta')} - {number(offset)}) AS {ident('m')}"
        resid, weight = f"{ident('m')} - {ident('y')} * {number(float(np.exp(-offset)))}", ident("m")
    z = ["1", *xs]
    aggs = ["count(*)"] + [f"sum(({ident('r')}) * {zj})" for zj in z]
    aggs += [f"sum(({ident('w')}) * {z[i]} * {z[j]})" for i, j in _pairs(k)]
    return (f"SELECT {', '.join(aggs)} FROM ("
            f"SELECT {passthrough}, {resid} AS {ident('r')}, {weight} AS {ident('w')} FROM ("
            f"SELECT {passthrough}, {link} FROM ("
            f"SELECT {passthrough}, {eta} AS {ident('eta')} FROM ("
            f"SELECT {', '.join(cols)} FROM {relation} WHERE {where}) AS q0) AS q1) AS q2) AS q3")


class GlmDerivatives:
    """A party's GLM derivatives at one iterate: its row count, ``g = sum r x`` and
    ``H = sum w x x'`` (``x = [1, scaled features]``), float64."""

    __slots__ = ("n", "gradient", "hessian")

    def __init__(self, n: int, gradient: npt.NDArray[np.float64], hessian: npt.NDArray[np.float64]) -> None:
        self.n = n
        self.gradient = gradient
        self.hessian = hessian


def glm_result(row: Sequence[object], k: int) -> GlmDerivatives:
    """:class:`GlmDerivatives` from :func:`glm_sql`'s row (no rows: zeros)."""
    n = int(row[0])  # type: ignore[call-overload]
    vals = [0.0 if v is None else float(v) for v in row[1:]]  # type: ignore[arg-type]
    grad = np.array(vals[:k])
    hess = np.zeros((k, k))
    for (i, j), v in zip(_pairs(k), vals[k:]):
        hess[i, j] = hess[j, i] = v
    return GlmDerivatives(n, grad, hess)


#: Rows per block of :meth:`GlmDesign.derivatives`: a block's design (``k`` columns of float64) and
#: its temporaries stay in the CPU's L2 cache and are allocated once per pass (a large temporary
#: costs a page fault per 4 KiB on first touch, which dominated a pass in blocks of 2^20 rows).
GLM_BLOCK = 4096


def glm_design_sql(relation: str, features: Sequence[str], target: str, scaling: Scaling | None,
                   target_scale: float, where: str) -> str:
    """The columns :class:`GlmDesign` keeps, computed by the engine in one scan: each feature
    scaled (``x1..``) and ``y = target / target_scale``, over the rows ``where`` keeps."""
    cols = [f"{scaled(c, scaling)} AS {ident(f'x{i + 1}')}" for i, c in enumerate(features)]
    cols.append(f"(CAST({ident(target)} AS DOUBLE) / {number(target_scale)}) AS {ident('y')}")
    return f"SELECT {', '.join(cols)} FROM {relation} WHERE {where}"


class GlmDesign:
    """A party's scaled features and target in memory (float64 columns, as
    :func:`glm_design_sql` reads them), for a GLM's gradient and Hessian at many iterates.

    :meth:`derivatives` is :func:`glm_sql`'s sums, computed in one pass over the rows in blocks
    of :data:`GLM_BLOCK`: each block's ``x = [1, features]`` is gathered into one buffer, then
    ``eta = x beta`` (BLAS), the link, ``g += x' r`` and ``H += (sqrt(w) x)' (sqrt(w) x)``
    (one BLAS ``syrk``), every temporary written into buffers allocated once per pass.
    """

    __slots__ = ("columns", "y", "n", "y_sum")

    def __init__(self, columns: Sequence[npt.NDArray[np.float64]], y: npt.NDArray[np.float64]) -> None:
        self.columns = [np.ascontiguousarray(c, dtype=np.float64) for c in columns]
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        #: rows held
        self.n = int(self.y.shape[0])
        #: the sum of ``y`` (the target divided by its scale)
        self.y_sum = float(self.y.sum())

    @classmethod
    def from_arrays(cls, data: Mapping[str, npt.NDArray[np.float64]], k: int) -> GlmDesign:
        """From :func:`glm_design_sql`'s columns (``x1..x{k-1}``, ``y``) as an engine returns them."""
        return cls([np.ma.getdata(data[f"x{j}"]) for j in range(1, k)], np.ma.getdata(data["y"]))

    def derivatives(self, beta: Sequence[float] | npt.NDArray[np.float64], family: Family,
                    offset: float = 0.0) -> GlmDerivatives:
        """The party's row count, ``g = sum r x`` and ``H = sum w x x'`` at ``beta`` (intercept
        first; :func:`glm_sql` defines ``r`` and ``w`` per family)."""
        k = len(self.columns) + 1
        b = np.asarray(beta, dtype=np.float64)
        if b.shape != (k,):
            raise ValueError(f"beta has {b.shape} entries, the design {k} columns")
        size = min(GLM_BLOCK, max(self.n, 1))
        xb = np.empty((size, k), order="F")  # columns contiguous: a BLAS operand with lda = size
        xb[:, 0] = 1.0
        xw = np.empty((size, k), order="F")
        eta, e, m, w = (np.empty(size) for _ in range(4))
        y_scale = float(np.exp(-offset))
        grad, hess = np.zeros(k), np.zeros((k, k))
        for s in range(0, self.n, size):
            stop = min(s + size, self.n)
            nb = stop - s
            x = xb[:nb]
            for j, col in enumerate(self.columns):
                x[:, j + 1] = col[s:stop]
            et, ee, mm, ww = eta[:nb], e[:nb], m[:nb], w[:nb]
            np.matmul(x, b, out=et)
            if family == "logistic":  # sigmoid without overflow: 1/(1+e), e/(1+e) with e = exp(-|eta|)
                np.abs(et, out=ee)
                np.negative(ee, out=ee)
                np.exp(ee, out=ee)
                np.add(ee, 1.0, out=mm)
                np.reciprocal(mm, out=mm)
                np.multiply(ee, mm, out=ww)
                np.copyto(mm, ww, where=et < 0)  # m = sigmoid(eta)
                np.subtract(1.0, mm, out=ww)
                np.multiply(ww, mm, out=ww)  # w = m (1 - m)
                np.subtract(mm, self.y[s:stop], out=ee)  # r = m - y
            else:
                np.subtract(et, offset, out=mm)
                with np.errstate(over="ignore"):  # an infinite mean is refused when it is shared
                    np.exp(mm, out=mm)
                np.multiply(self.y[s:stop], y_scale, out=ee)
                np.subtract(mm, ee, out=ee)  # r = m - y e^-offset
                np.copyto(ww, mm)  # w = m
            grad += ee @ x
            np.sqrt(ww, out=ww)
            xs = np.multiply(x, ww[:, None], out=xw[:nb])
            hess += xs.T @ xs  # numpy calls BLAS syrk for a matrix times its own transpose
        return GlmDerivatives(self.n, grad, hess)
