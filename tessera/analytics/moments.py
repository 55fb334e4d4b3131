"""Pooled moments whose precision follows the data, not the declared bounds (issue #14).

**Mechanism: local centring with the parallel-variance combination** (Chan, Golub & LeVeque
1979, "Updating formulae and a pairwise algorithm for computing sample variances"). Each party
reduces its rows, in plaintext and at full float precision, to its count ``n_i``, its mean
``m_i`` and its *centred* second moments ``M2_i = sum (x - m_i)(x - m_i)'``; the secure stage
combines them::

    N = sum n_i,  mean = sum n_i m_i / N,
    M2 / N = sum M2_i / N + sum (n_i / N) (m_i - mean)(m_i - mean)'

so nothing ever subtracts two large sums of squares (the cancellation that made variances 0,
huge or negative when a column's spread is small next to its declared range).

**Encodings** (values scaled to [-1, 1] by the declared bounds, as everywhere). ``N`` is an
output and is revealed first; then every shared quantity has a magnitude the bounds fix, so
each is encoded with :data:`WIDE` = 58 fractional bits (``2^-58`` absolute, about 17 decimal
digits below the half-range): party ``i`` shares ``n_i m_i / N`` (``|.| <= n_i / N <= 1``),
``r_i = sqrt(n_i / N)`` (``<= 1``), ``a_i = r_i m_i`` (``<= 1``) and ``M2_i / N`` (its entries
at most ``n_i / N``). The between-party term is ``sum e_i e_i'`` with ``e_i = a_i - r_i mean``
(``|e_i| <= 1``: ``e_i^2 = (n_i/N)(m_i - mean)^2`` is part of the pooled variance). Its two
products are :func:`wide_mul`: each operand is split at 29 bits into a high and a low part, so
the three partial products stay below 2^61 before truncation and the product keeps all 58 bits
(a plain fixed-point product would have to drop to 2^-29). Optional public weights ``c_k <= 2``
multiply a variable's moments (ttest folds its group factors in this way).

**Accuracy** (``u = 2^-58``, ``P`` parties, ``v_j`` the pooled population variance of variable
``j`` in scaled units): ``|error of M2_jk / N| <= (4P + 1) u + 2^-37 (v_j + v_k) / 2`` and
``|error of mean| <= 2^-50`` (float rounding of the parties' inputs: ``2^-52`` relative). The
``2^-37`` term bounds ``2 |e| de`` (the error ``de <= 2^-49`` of ``e`` enters multiplied by ``e``
itself, which is at most the spread) by the inequality of arithmetic and geometric means.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.analytics.base import Local
from tessera.errors import PlanError
from tessera.mpc import approx
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, concatenate, stack

__all__ = ["WIDE", "ULP", "local_moments", "column_moments", "stack_local", "pooled_counts", "pool", "wide_mul", "split_wide",
           "moment_error", "check_parties", "MAX_PARTIES", "power_of_two_normaliser", "normaliser",
           "times_power_of_two", "float_parts", "float_value", "rsqrt_unit", "RELATIVE", "MEAN_ERROR", "BELOW_RESOLUTION"]

#: Fractional bits of the pooled moments (scaled units).
WIDE = 58
#: One unit in the last place of the pooled moments.
ULP = 2.0**-WIDE
_SPLIT = 29
#: Relative part of the stated error of a pooled second moment.
RELATIVE = 2.0**-37
#: Absolute error of a pooled mean (scaled units).
MEAN_ERROR = 2.0**-50
#: A pooled variance below this many ULP is indistinguishable from 0 (treated as 0 where divided by).
BELOW_RESOLUTION = 64


#: Parties the stated accuracy covers (the error of ``e_i`` grows with the number of terms).
MAX_PARTIES = 64


def check_parties(parties: list[str], partition: str) -> None:
    """Refuse a horizontal plan with more parties than the stated accuracy covers."""
    if partition == "horizontal" and len(parties) > MAX_PARTIES:
        raise PlanError(f"the pooled moments' stated accuracy covers at most {MAX_PARTIES} parties, not "
                        f"{len(parties)}; split the job or merge data owners")


def moment_error(parties: int) -> float:
    """Absolute error (scaled units) of one pooled population (co)moment ``M2_jk / N``."""
    return (4 * parties + 1) * ULP


def local_moments(x: npt.NDArray[np.float64], full: bool) -> Local:
    """One party's count, mean and centred second moments of the rows of ``x`` (n x k, scaled).

    ``full``: the k x k co-moment matrix; otherwise only its diagonal (then :func:`column_moments`
    on each column, which is faster). The mean is refined by one correction pass, so it is
    within float rounding of the exact mean of the party's rows. No rows: count 0, mean 0,
    moments 0.
    """
    n, k = x.shape
    if not full:
        return stack_local([column_moments(np.array(x[:, j], dtype=np.float64)) for j in range(k)])
    if n == 0:
        return {"count": np.zeros(k, dtype=np.int64), "mean": np.zeros(k), "m2": np.zeros((k, k))}
    m = x.mean(axis=0)
    d = x - m
    delta = d.mean(axis=0)
    m2 = d.T @ d - n * np.outer(delta, delta)  # = sum (x - m - delta)(x - m - delta)'
    return {"count": np.full(k, n, dtype=np.int64), "mean": m + delta, "m2": m2}


def column_moments(x: npt.NDArray[np.float64]) -> Local:
    """:func:`local_moments` of one column (a 1-D array, overwritten: it is centred in place).

    Pairwise summation (numpy's, along a contiguous axis): the mean and ``M2`` carry a relative
    rounding error of about ``log2(n) 2^-53``.
    """
    n = len(x)
    if n == 0:
        return {"count": np.zeros(1, dtype=np.int64), "mean": np.zeros(1), "m2": np.zeros(1)}
    m = float(x.mean())
    x -= m
    delta = float(x.mean())
    m2 = float(np.dot(x, x)) - n * delta * delta
    return {"count": np.array([n], dtype=np.int64), "mean": np.array([m + delta]), "m2": np.array([max(m2, 0.0)])}


def stack_local(parts: list[Local]) -> Local:
    """Variables side by side from several :func:`local_moments` (diagonal moments only)."""
    return {key: np.concatenate([p[key] for p in parts]) for key in ("count", "mean", "m2")}


def pooled_counts(session: Session, local: Local) -> npt.NDArray[np.int64]:
    """The total count of every variable, revealed to every party (the counts are outputs)."""
    k = len(local["count"])
    total: SecretTensor | None = None
    for part in session.owner_inputs(local["count"] if session.owns else None, shape=(k,), frac_bits=0):
        total = part if total is None else total + part
    assert total is not None
    return np.asarray(session.reveal(total)[0], dtype=np.int64)


def split_wide(x: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
    """``x`` (at :data:`WIDE`) as ``hi + lo``: ``hi`` at 29 fractional bits, ``lo`` the exact rest."""
    hi = approx.at_scale(x, _SPLIT)
    return hi, x - hi


def wide_mul(x: SecretTensor, y: SecretTensor) -> SecretTensor:
    """``x * y`` at :data:`WIDE` fractional bits for ``|x|, |y| <= 2`` (same shapes); error <= 3 ULP.

    ``x = xh + xl`` with ``xh`` at 29 bits (``|raw| <= 2^30``) and ``|xl| < 2^-28`` (raw below
    2^30), likewise ``y``: ``xh yh`` is exact at 58 bits, ``xh yl + xl yh`` and ``xl yl`` are
    truncated once each; every raw product stays below 2^61. Rounds: one truncation, then three
    products (independent).
    """
    both = stack([x, y])
    hi, lo = split_wide(both)
    hh = approx.mul_to(hi[0], hi[1], WIDE)
    cross = approx.mul_to(hi, stack([lo[1], lo[0]]), WIDE)
    ll = approx.mul_to(lo[0], lo[1], WIDE)
    return hh + cross[0] + cross[1] + ll


def pool(session: Session, local: Local, counts: npt.NDArray[np.int64], full: bool,
         weights: npt.NDArray[np.float64] | None = None) -> tuple[SecretTensor, SecretTensor]:
    """Secret pooled ``(mean, c * M2 / N)`` of every variable, at :data:`WIDE` (scaled units).

    ``local`` is this party's :func:`local_moments`; ``counts`` the revealed totals; ``full``:
    the co-moment matrix (all variables share one count), otherwise per variable. ``weights``
    ``c_k`` (public, at most 2) scale each variable's second moments. Variables without rows
    give zeros. Reveals nothing.
    """
    k = len(counts)
    c = np.ones(k) if weights is None else np.asarray(weights, dtype=np.float64)
    nk = np.maximum(counts, 1).astype(np.float64)
    width = 3 * k + (k * k if full else k)
    mine = None
    if session.owns:
        w = np.asarray(local["count"], dtype=np.float64) / nk
        r = np.sqrt(c * w)
        q = local["m2"] / nk[0] if full else c * local["m2"] / nk
        mine = np.concatenate([w * local["mean"], r, r * local["mean"], np.ravel(q)])
    parts = session.owner_inputs(mine, shape=(width,), frac_bits=WIDE)
    x = stack(parts)  # (P, width)
    n_p = len(session.owners)
    mean = x[:, :k].sum(axis=0)
    rr, aa, qq = x[:, k:2 * k], x[:, 2 * k:3 * k], x[:, 3 * k:]
    e = aa - wide_mul(rr, stack([mean] * n_p))  # (P, k): sqrt(c n_i / N) (m_i - mean)
    if full:
        left = concatenate([e.reshape(n_p, k, 1)] * k, axis=2)
        right = concatenate([e.reshape(n_p, 1, k)] * k, axis=1)
        m2 = qq.reshape(n_p, k, k).sum(axis=0) + wide_mul(left, right).sum(axis=0)
    else:
        m2 = qq.sum(axis=0) + wide_mul(e, e).sum(axis=0)
    return mean, m2


def power_of_two_normaliser(v: SecretTensor) -> SecretTensor:
    """For ``v`` at :data:`WIDE` with ``0 <= v < 2``: the secret integer ``G = 2^t`` with
    ``v G^2`` in [0.5, 2), or 0 where ``v`` is below :data:`BELOW_RESOLUTION` ULP (resolution:
    such a variance is not known to any relative precision). ``G <= 2^26``. Reveals nothing.
    """
    return normaliser(v)[0]


def normaliser(v: SecretTensor, floor: float | None = None) -> tuple[SecretTensor, SecretTensor]:
    """:func:`power_of_two_normaliser` ``G = 2^t`` and its exponent ``t`` (both secret integers;
    ``G = 0``, ``t = 0`` below resolution: :data:`BELOW_RESOLUTION` ULP, or ``floor`` where the
    variance is known less precisely). Reveals nothing.

    Secure normalisation (Catrina–Saxena 2010): the one-hot vector of ``v``'s highest set bit
    ``k`` gives ``t = floor((58 - k) / 2)`` as a public linear combination of its bits.
    """
    small = v < (BELOW_RESOLUTION * ULP if floor is None else max(floor, BELOW_RESOLUTION * ULP))
    _, onehot = approx.normalize(v)
    pos = np.arange(onehot.shape[-1])
    t = np.clip((WIDE - pos) // 2, 0, None).astype(np.int64)
    live = 1 - small
    g = (onehot * (np.int64(1) << t)).sum(axis=-1) * live
    return g, (onehot * t).sum(axis=-1) * live


def times_power_of_two(x: SecretTensor, g: SecretTensor, frac: int) -> SecretTensor:
    """``x * g`` at ``frac`` fractional bits, exact up to 2 ULP, for ``x`` at :data:`WIDE` with
    ``|x| <= 1`` and a secret integer ``0 <= g <= 2^26`` (same shapes): ``x`` is split at 29 bits
    (:func:`split_wide`) so both integer products stay below 2^57 before truncation."""
    hi, lo = split_wide(x)
    return approx.at_scale(hi * g, frac) + approx.at_scale(lo * g, frac)


def float_parts(x: SecretTensor, exponent: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
    """``(m, e)`` with ``x * 2^exponent = m * 2^e``, ``|m|`` in [0.5, 1) or ``m = e = 0``: a
    floating-point form of a value whose scale is a secret power of two (``exponent``, a secret
    integer), for ``|x| < 2^(61 - f)``. Opening ``(m, e)`` reveals the value ``x 2^exponent`` to
    the ``f - 1`` bits of ``m`` and nothing else: both are functions of that value.
    Rounds: a comparison and a normalisation.
    """
    f = x.frac_bits
    sign = 1 - 2 * (x < 0)
    u, onehot = approx.normalize(x * sign)
    pos = np.arange(onehot.shape[-1], dtype=np.int64)
    k = (onehot * (pos + 1 - f)).sum(axis=-1)
    nonzero = onehot.sum(axis=-1)  # 0 for x = 0: then the exponent must not be disclosed
    return u * sign, (exponent + k) * nonzero


def float_value(m: Any, e: Any) -> npt.NDArray[np.float64]:
    """The value of opened :func:`float_parts`."""
    return np.asarray(m, dtype=np.float64) * np.exp2(np.asarray(e, dtype=np.float64))


def rsqrt_unit(y: SecretTensor) -> SecretTensor:
    """``1 / sqrt(y)`` for ``y`` in [0.5, 2) (a normalised variance) at ``y``'s scale (f >= 20 bits).

    Four Newton steps ``r <- r (1.5 - y r^2 / 2)`` from the fixed linear start ``1.51 - 0.432 y``
    (relative error <= 0.087, then 0.011, 1.9e-4, 5.4e-8, 4.4e-15): relative error <= 2^-(f-4),
    from the products' rounding. No normalisation (the input is already normalised), so it is
    cheaper than :func:`tessera.mpc.approx.rsqrt`. ``y = 0`` gives a finite value (at most 12.3). Rounds: 12 products.
    """
    r = 1.51 - 0.432 * y
    for _ in range(4):
        r = r * (1.5 - (y * 0.5) * (r * r))
    return r


def describe_error(parties: int, half: float, max_rows: int) -> dict[str, dict[str, float]]:
    """Stated accuracy of one column's released describe values, ``|error| <= abs + rel |value|``."""
    e = moment_error(parties)
    var = {"abs": 2 * e * half**2, "rel": RELATIVE}
    return {
        "mean": {"abs": MEAN_ERROR * half, "rel": 2.0**-52},
        "sum": {"abs": MEAN_ERROR * half * max_rows, "rel": 2.0**-52},
        "var": var,
        "std": {"abs": math.sqrt(var["abs"]), "rel": RELATIVE},
    }


def accuracy_text(acc: dict[str, Any]) -> str:
    """A stated accuracy as plan text."""
    parts = []
    if acc.get("exact"):
        return "exact"
    if acc.get("abs"):
        parts.append(f"{acc['abs']:.2g}")
    if acc.get("rel"):
        parts.append(f"{acc['rel']:.2g} x |value|")
    for key, what in (("rel_var", "(var_i h_j / h_i + var_j h_i / h_j) / 2"), ("rel_per_s", "|value| / s"), ("abs_per_sqrt_s", "1 / sqrt(s)"),
                      ("per_relative_variance", "1 / v_min"), ("per_relative_sd", "1 / sqrt(v_min)")):
        if acc.get(key):
            parts.append(f"{acc[key]:.2g} x {what}")
    return "|error| <= " + (" + ".join(parts) if parts else "0")
