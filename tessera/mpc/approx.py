"""Nonlinear functions on secret tensors: reciprocal, division, square roots, exp, log, sigmoid.

Each function states its domain, its error bound (in units of the last place, ULP = 2^-f, or
relative) and its cost; none reveals anything. Bounds are checked by ``tests/mpc/test_approx.py``.

Normalisation (Catrina–Saxena 2010, "SecFPDiv"): for ``X > 0`` (the raw ring value) the one-hot
vector ``e`` of its highest set bit ``k`` comes from the binary adder (:func:`a2b`), a prefix-OR
and one batched bit conversion; then ``u = X / 2^(k+1)`` lies in [0.5, 1) and any power of
``2^k`` is a public linear combination of ``e``. Newton iterations on ``u`` converge from a
fixed linear first guess.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.errors import EncodingError
from tessera.mpc.circuits import a2b, bits_of
from tessera.mpc.tensor import SecretTensor, stack
from tessera.ring.ring import ring_op

__all__ = ["at_scale", "mul_to", "reciprocal", "divide", "rsqrt", "sqrt", "exp", "log", "sigmoid", "floor_divide", "normalize", "times_power"]

#: Highest bit position handled by normalisation: inputs need X < 2^61 (|x| < 2^(61-f)).
_TOP = 61
_POS = np.arange(_TOP)
# 2^r on [0, 1), degree 5, max error 1.1e-7 (least squares on Chebyshev nodes)
_EXP2 = (0.9999999, 0.69315462, 0.24014077, 0.05586328, 0.00894621, 0.00189511)
# ln(u) for u in [0.5, 1) as a polynomial in z = 4u - 3, degree 7, max error 5.7e-7
_LN = (-2.87681946e-01, 3.33333151e-01, -5.55600413e-02, 1.23483163e-02, -3.06224262e-03,
       8.12989493e-04, -2.68875955e-04, 7.90553354e-05)


def _in_domain(x: SecretTensor, top: float, name: str) -> None:
    """Refuse an input whose declared magnitude bound exceeds the function's domain."""
    if x.bound is not None and x.bound >= top:
        raise EncodingError(f"{name} is defined for |x| below {top:.3g} at {x.frac_bits or x.session.frac_bits} "
                            f"fractional bits, but its input could reach {x.bound:.3g}; scale the input down")


def mul_to(a: SecretTensor, b: SecretTensor, frac: int) -> SecretTensor:
    """``a * b`` (same shapes) truncated to ``frac`` fractional bits, at most ``a.frac_bits +
    b.frac_bits``: one product, exact up to one ULP. The raw product ``a * b * 2^(a.frac_bits +
    b.frac_bits)`` must stay below 2^62 in magnitude (the caller's bound)."""
    proto = a.session.protocol
    return SecretTensor(a.session, proto.mul(a.shares, b.shares, a.frac_bits + b.frac_bits - frac), frac)


_mul_to = mul_to


def at_scale(x: SecretTensor, frac: int) -> SecretTensor:
    """``x`` re-encoded with ``frac`` fractional bits (exact upwards, truncated downwards)."""
    if frac >= x.frac_bits:
        return SecretTensor(x.session, x._rescaled(frac), frac)
    return SecretTensor(x.session, x.session.protocol.truncate(x.shares, x.frac_bits - frac), frac)


def _table(e: SecretTensor, coeffs: npt.NDArray[np.floating[Any]], frac: int) -> SecretTensor:
    """``sum_i e_i c_i`` for one-hot integer ``e`` and public reals ``c`` encoded at ``frac`` (local)."""
    return (e * np.round(coeffs * 2.0**frac).astype(np.int64)).sum(axis=-1)._relabel(frac)


def _horner(z: SecretTensor, coeffs: tuple[float, ...]) -> SecretTensor:
    p = z * coeffs[-1] + coeffs[-2]
    for c in reversed(coeffs[:-2]):
        p = p * z + c
    return p


def _estrin5(z: SecretTensor, c: tuple[float, ...]) -> SecretTensor:
    """``sum c_i z^i`` of degree 5 for ``0 <= z < 1`` in three product rounds instead of Horner's
    five (Estrin 1960): ``(c0 + c1 z) + z^2 (c2 + c3 z) + z^4 (c4 + c5 z)``, each level one batched
    product.

    Up to 20 fractional bits the linear terms are exact local products by the coefficients encoded
    at ``f`` bits (scale ``2f``), so five values are rounded: ``z^2`` and ``c0 + c1 z`` (a product
    by a trivially shared 1, truncated by ``f``), then ``z^4`` and ``z^2 (c2 + c3 z)``, then ``z^4
    (c4 + c5 z)`` (raw products below ``2^(3f)``). Above 20 bits (``2^(3f)`` would wrap) the
    coefficients ride as trivially shared constants and seven products are rounded."""
    f = z.frac_bits
    if 3 * f > 60:
        zero = z * 0
        lin = stack([z, z, z, z]) * stack([z, zero + c[1], zero + c[3], zero + c[5]])
        z2, a, b, cc = lin[0], lin[1] + c[0], lin[2] + c[2], lin[3] + c[4]
        sq = stack([z2, z2]) * stack([z2, b])
        return a + sq[1] + sq[0] * cc
    proto = z.session.protocol

    def linear(c0: float, c1: float) -> SecretTensor:  # c0 + c1 z at scale 2f
        return (z * np.int64(round(c1 * 2.0**f)))._relabel(2 * f) + c0

    a, b, cc = linear(c[0], c[1]), linear(c[2], c[3]), linear(c[4], c[5])
    one = proto.add_public(np.zeros_like(z.shares), np.ones(z.shape, dtype=np.uint64))
    lvl1 = proto.mul(np.stack([z.shares, a.shares], axis=1), np.stack([z.shares, one], axis=1), f)
    zsq = lvl1[:, 0]
    zsq_hi = zsq << np.uint64(f)  # z^2 at scale 2f (exact)
    lvl2 = proto.mul(np.stack([zsq, zsq], axis=1), np.stack([zsq_hi, b.shares], axis=1), 2 * f)
    top = proto.mul(lvl2[:, 0], cc.shares, 2 * f)  # z^4 (c4 + c5 z)
    return SecretTensor(z.session, lvl1[:, 1] + lvl2[:, 1] + top, f)


def times_power(w: SecretTensor, e: SecretTensor, exps: npt.NDArray[np.int64], j: int | None = None) -> SecretTensor:
    """``w * 2^exps[k]`` for the position ``k`` of the one-hot ``e``, at ``w``'s scale, exact up
    to one ULP (``|w| < 2``, or any ``w`` whose result the caller knows stays in range, with
    ``exps[k] >= -j`` at every position that can occur). Non-negative powers multiply by an exact integer; negative ones
    multiply by ``2^(J + exps[k])`` and truncate by ``J`` once, so no power is rounded to a table
    resolution (a single fixed-point table of powers kept only ``61 - 2f`` bits of the small ones:
    at 28 bits a reciprocal of 16 or more came out 0). Positive powers need
    ``exps <= 61 - 2f - 1``; results below one ULP are 0. Rounds: one product, one truncation."""
    f = w.frac_bits
    if j is None:
        j = max(0, min(int(-exps.min()), 60 - f))
    up = np.where(exps >= 0, np.int64(1) << np.clip(exps, 0, 62), 0).astype(np.int64)
    down_exp = j + exps
    down = np.where((exps < 0) & (down_exp >= 0), np.int64(1) << np.clip(down_exp, 0, 62), 0).astype(np.int64)
    t_up, t_down = (e * up).sum(axis=-1), (e * down).sum(axis=-1)
    prods = stack([w, w]) * stack([t_up, t_down])
    low = SecretTensor(w.session, w.session.protocol.truncate(prods[1].shares, j), f) if j else prods[1]
    return prods[0] + low


def _half_powers(w: SecretTensor, e: SecretTensor, halves: npt.NDArray[np.int64]) -> SecretTensor:
    """``w * 2^(halves[k] / 2)`` (``|w| < 1.42``): the odd half is a product by sqrt 2 selected by
    the parity of ``halves[k]``, the rest :func:`times_power`."""
    odd = (e * (halves % 2)).sum(axis=-1)
    w = w * (1 + odd * (math.sqrt(2) - 1))
    return times_power(w, e, halves // 2)


@ring_op
def _msb_one_hot(x: SecretTensor) -> SecretTensor:
    """Integer 0/1 tensor (..., 61): bit ``i`` set iff the raw value's highest set bit is ``i``.

    All zeros for 0 and for negative values. Rounds: a2b (7) + 6 + one bit conversion.
    """
    proto = x.session.protocol
    y = a2b(proto, x.shares)
    for s in (1, 2, 4, 8, 16, 32):
        sh = y >> np.uint64(s)
        y = y ^ sh ^ proto.and_(y, sh)  # y | (y >> s)
    onehot = y ^ (y >> np.uint64(1))
    bits = np.stack([(onehot >> np.uint64(i)) & np.uint64(1) for i in _POS], axis=-1)
    return SecretTensor(x.session, proto.b2a_bit(bits), 0)


def normalize(x: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
    """For ``x > 0``: ``(u, e)`` with ``u = X / 2^(k+1)`` in [0.5, 1) (at ``x``'s scale) and
    ``e`` the one-hot integer vector of ``k`` (last axis, 61 positions). ``x = u * 2^(k+1-f)``.

    Domain ``2^-f <= x < 2^(61-f)``; ``x <= 0`` gives ``u = 0`` and ``e = 0``.
    """
    e = _msb_one_hot(x)
    v = (e * (np.int64(1) << (_TOP - 1 - _POS).astype(np.int64))).sum(axis=-1)  # 2^(60-k)
    f = x.frac_bits
    u = SecretTensor(x.session, x.session.protocol.mul(x.shares, v.shares, _TOP - f), f)
    return u, e


def _sign(x: SecretTensor) -> SecretTensor:
    """``1 - 2 [x < 0]``: +1 or -1 (integer)."""
    return 1 - 2 * (x < 0)


def reciprocal(x: SecretTensor) -> SecretTensor:
    """``1 / x`` for ``2^-f <= |x| < 2^(61-f)`` (either sign), ``f <= 30``.

    Relative error <= 2^-(f-2) plus 1 ULP, at every ``f``. ``x = 0`` (outside the domain)
    returns 0. Rounds: a comparison, normalisation, 5 (6 above 26 bits) dependent products
    (Goldschmidt steps and a Newton step), a product and a truncation.
    """
    f = x.frac_bits or x.session.frac_bits
    _in_domain(x, 2.0 ** (61 - f), "reciprocal")
    x = at_scale(x, f)
    sign = _sign(x)
    u, e = normalize(x * sign)
    w = 2.9142 - 2 * u  # max relative error 0.086 on [0.5, 1)
    w = _inverse_steps(u, w, 2 if f <= 26 else 3)  # 0.086 -> 5.5e-5 -> 3e-9 (or -> 3e-9 -> 9e-18)
    return times_power(w, e, (f - 1 - _POS).astype(np.int64)) * sign  # w 2^(f-1-k)


def _inverse_steps(d: SecretTensor, w: SecretTensor, goldschmidt: int) -> SecretTensor:
    """``1 / d`` from a first guess ``w`` of relative error ``e0``: ``goldschmidt`` Goldschmidt
    steps (``w <- w (1 + e)`` and ``e <- e^2``, one batched product each; Goldschmidt 1964) reach
    ``e0^(2^goldschmidt)``, then one self-correcting Newton step ``w (2 - d w)`` squares it and the
    rounding of the steps before. Product levels: ``goldschmidt + 3`` (Newton alone: two per
    squaring)."""
    e = 1 - d * w
    for i in range(goldschmidt):
        if i == goldschmidt - 1:
            w = w * (1 + e)
        else:
            g = stack([w, e]) * stack([1 + e, e])
            w, e = g[0], g[1]
    return w * (2 - d * w)


def divide(a: SecretTensor, b: SecretTensor) -> SecretTensor:
    """``a / b`` elementwise (broadcasting): ``a * reciprocal(b)``; same domain for ``b``."""
    return a * reciprocal(b)


def rsqrt(x: SecretTensor) -> SecretTensor:
    """``1 / sqrt(x)`` for ``2^-f <= x < 2^(61-f)``, ``f <= 30``; relative error <= 2^-(f-3) at
    every ``f``.

    ``x <= 0`` (outside the domain) returns 0. Rounds: normalisation, 3-4 Newton steps
    (3 products each), 2 products and a truncation.
    """
    f = x.frac_bits or x.session.frac_bits
    _in_domain(x, 2.0 ** (61 - f), "rsqrt")
    x = at_scale(x, f)
    u, e = normalize(x)
    r = 1.7746123 - 0.80404782 * u  # max relative error 0.03 on [0.5, 1)
    for _ in range(3 if f <= 20 else 4):  # 0.03 -> 1.4e-3 -> 2.8e-6 -> 1.2e-11
        r = r * (1.5 - (u * 0.5) * (r * r))
    return _half_powers(r, e, (f - 1 - _POS).astype(np.int64))  # r 2^((f-1-k)/2)


def sqrt(x: SecretTensor) -> SecretTensor:
    """``sqrt(x)`` for ``0 <= x < 2^(61-f)``, ``f <= 30``; 0 gives exactly 0; relative error
    <= 2^-(f-3) plus 1 ULP at every ``f``. Negative inputs (outside the domain) return 0.
    Rounds as :func:`rsqrt`."""
    f = x.frac_bits or x.session.frac_bits
    _in_domain(x, 2.0 ** (61 - f), "sqrt")
    bound = None if x.bound is None else math.sqrt(x.bound) * (1 + 2.0 ** -(f - 3)) + 2.0**-f
    x = at_scale(x, f)
    u, e = normalize(x)
    r = 1.7746123 - 0.80404782 * u
    for _ in range(3 if f <= 20 else 4):
        r = r * (1.5 - (u * 0.5) * (r * r))
    su = u * r  # sqrt(u)
    out = _half_powers(su, e, (_POS + 1 - f).astype(np.int64))  # sqrt(u) 2^((k+1-f)/2)
    out.bound = bound
    return out


def _exp2(t: SecretTensor, lo: int, hi: int) -> SecretTensor:
    """``2^t`` for ``t`` already clipped to [lo, hi] (integers, lo <= 0 < hi)."""
    f = t.frac_bits
    s = t.session
    shifted = t - lo  # >= 0
    nbits = max(1, math.ceil(math.log2(hi - lo + 1)))
    # only the integer bits are converted; the fraction is what remains (linear)
    bits = SecretTensor(s, bits_of(s.protocol, shifted.shares, list(range(f, f + nbits))), 0)
    int_bits = [bits[..., j] for j in range(nbits)]
    whole = (bits * (np.int64(1) << np.arange(nbits, dtype=np.int64))).sum(axis=-1)
    frac_part = shifted - whole
    # 2^(integer part) as an exact integer: product of (1 + b_j (2^(2^j) - 1)), as a tree
    factors = [1 + b * ((1 << (1 << j)) - 1) for j, b in enumerate(int_bits)]
    while len(factors) > 1:
        pairs = [factors[i] * factors[i + 1] for i in range(0, len(factors) - 1, 2)]
        factors = pairs + ([factors[-1]] if len(factors) % 2 else [])
    p2 = _estrin5(frac_part, _EXP2)  # 2^frac in [1, 2)
    return _mul_to(p2, factors[0]._relabel(-lo), f) if lo else p2 * factors[0]


def exp(x: SecretTensor) -> SecretTensor:
    """``e^x`` for ``x < (58 - 2f) ln 2`` (18.0 at f = 16; above it the input is clipped there); below ``-(f+1) ln 2`` it saturates
    to within one ULP of 0 (the true value is under one ULP). Relative error <= 2^-(f-4) plus 1 ULP.
    Rounds: a batched clip, one product, a2b and bit conversion, 3 levels of products for the
    integer power and 3 for the polynomial (Estrin's scheme).
    """
    f = x.frac_bits or x.session.frac_bits
    hi = 59 - 2 * f - 1
    lo = -(f + 2)
    x = at_scale(x, f)
    margin = 2.0**-8  # keeps t inside [lo, hi] despite the rounding of log2(e)
    x = _clip(x, (lo + margin) / math.log2(math.e), (hi - margin) / math.log2(math.e))
    t = x.scale(math.log2(math.e), (abs(lo) + 1) / math.log2(math.e))
    return _exp2(t, lo, hi)


def _clip(x: SecretTensor, lo: float, hi: float) -> SecretTensor:
    below, above = x._sign_bits(x - lo, -(x - hi))
    return x + (stack([below, above]) * stack([lo - x, hi - x])).sum(axis=0)


def log(x: SecretTensor) -> SecretTensor:
    """Natural logarithm for ``2^-f <= x < 2^(61-f)``; absolute error <= 2^-(f-3).

    Values at or below 0 are outside the domain: they are clamped to ``2^-f`` (result
    ``-f ln 2``). Rounds: a comparison, normalisation, 7 products.
    """
    f = x.frac_bits or x.session.frac_bits
    x = at_scale(x, f)
    _in_domain(x, 2.0 ** (61 - f), "log")
    ulp = 2.0**-f
    x = x + (x < ulp) * (ulp - x)
    u, e = normalize(x)
    z = 4 * u - 3
    k_term = _table(e, (_POS + 1 - f) * math.log(2), f)
    return _horner(z, _LN) + k_term


def sigmoid(x: SecretTensor) -> SecretTensor:
    """``1 / (1 + e^-x)`` on the whole real line; absolute error <= 4 ULP for ``f <= 20`` (at more
    bits the 2^t polynomial's 1.1e-7 adds up to 2^-25: 12 ULP at 28 bits). Beyond ``|x| >= f + 2``
    it returns its value at ``f + 2``, whose true value is within one ULP of 0 or 1; the result is
    then 0 or 1 in most calls, and one ULP off in some (two in about one value of 2,000 at 28 bits:
    the random rounding of the reciprocal's last Newton step).

    Rounds: one batched comparison, exp of a non-positive argument, a minimax quadratic first guess
    of the reciprocal and 2 self-correcting Newton steps on [1, 2] (up to 20 bits; above, a linear
    guess and 3 steps). (Goldschmidt steps save three rounds but their truncation errors do not
    correct themselves: 7.6 ULP, which logistic regression's Newton step amplifies by the inverse
    Hessian's norm — 0.6% on a wide-bounded feature. Kept exact instead.)
    """
    f = x.frac_bits or x.session.frac_bits
    x = at_scale(x, f)
    cap = float(min(f + 2, int((60 - f) / math.log2(math.e)) - 1))  # keeps 2^-cap*log2(e) exact enough
    neg, below, above = x._sign_bits(x, x + cap, -(x - cap))
    # |x| clipped to cap, in one product: below implies neg and above implies not neg, so
    # (1 - below - above)(1 - 2 neg) = 1 - 2 neg + below - above
    a = x * (1 - 2 * neg + below - above) + (below + above) * int(cap)
    t = a.scale(-math.log2(math.e), cap)  # in [-(f+2) log2 e, 0]
    lo = -math.ceil(cap * math.log2(math.e))
    ex = _exp2(t, lo, 1)  # e^-|x| in (0, 1]
    d = 1 + ex  # [1, 2]
    if 3 * f <= 60:
        w, steps = _reciprocal_guess(ex), 2  # 1/99 -> 1.0e-4 -> 1.0e-8
    else:
        w, steps = 1.4571 - 0.5 * d, 3  # 0.086 -> 7.4e-3 -> 5.5e-5 -> 3e-9
    for _ in range(steps):
        w = w * (2 - d * w)
    out = w + neg * (1 - 2 * w)
    out.bound = 1.0 + 2.0**-f
    return out


def _reciprocal_guess(e: SecretTensor) -> SecretTensor:
    """``1 / (1 + e)`` for ``0 <= e <= 1`` to relative error ``1/99``: the minimax quadratic
    ``(98 - 80 e + 32 e^2) / 99`` (``1 - d w(d)`` is the Chebyshev polynomial ``T_3(2d - 3) /
    T_3(-3)``, ``d = 1 + e``). The linear terms are exact local products at scale ``2f`` and both
    halves round once, in one batched product: ``e * (32/99 e)`` and ``(98/99 - 80/99 e) * 1``,
    truncated by ``2f`` (raw products below ``2^(3f)``, so ``f <= 20``). One product level, where a
    Newton step from the linear guess takes two."""
    f = e.frac_bits
    proto = e.session.protocol
    lin = (e * np.int64(round(-80 / 99 * 2.0**f)))._relabel(2 * f) + 98 / 99
    quad = (e * np.int64(round(32 / 99 * 2.0**f)))._relabel(2 * f)
    one = proto.add_public(np.zeros_like(e.shares), np.full(e.shape, 1 << f, dtype=np.uint64))
    both = proto.mul(np.stack([e.shares, lin.shares], axis=1), np.stack([quad.shares, one], axis=1), 2 * f)
    return SecretTensor(e.session, both[:, 0] + both[:, 1], f)


def floor_divide(x: SecretTensor, d: int) -> SecretTensor:
    """Exact ``floor(x / d)`` of an integer tensor by a public positive integer ``d``, for
    ``|x| < 2^30``. A 2^(31 + log2 d)-scaled multiplier gets within one of the quotient, and
    one batched comparison of the remainder corrects it. Rounds: a truncation and a comparison.
    """
    if not isinstance(d, (int, np.integer)) or d <= 0:
        raise ValueError("floor_divide needs a positive public integer divisor")
    if x.frac_bits:
        raise ValueError("floor_divide works on integer tensors (frac_bits = 0)")
    d = int(d)
    shift = 31 + d.bit_length() - 1
    m = round(2**shift / d)
    q0 = SecretTensor(x.session, x.session.protocol.truncate(x.shares * np.uint64(m), shift), 0)
    r = x - q0 * d
    c = x._sign_bits(r, r + d, -(r - d + 1), -(r - 2 * d + 1))
    return q0 - c[0] - c[1] + c[2] + c[3]
