"""SecretTensor: a numpy-like secret value of any shape, shared among the session's parties.

Linear operations (``+``, ``-``, multiplication by public integers, indexing, slicing,
reshape, transpose, sum, concatenate) are local. Products of secrets, ``@``, multiplication by
public fractions and division by public numbers run the session's protocol. Fixed-point
scaling is tracked per tensor (``frac_bits``): integer tensors have 0 fractional bits and are
exact; products of fixed-point tensors are truncated back to the larger of the two scales.
Nothing here reveals anything; only :meth:`SecretTensor.reveal` and ``Session.reveal`` do.

**Magnitude bounds** (issue #14). A tensor may carry a public ``bound`` on the magnitude of its
values (``Session.input(..., bound=B)``, a default for inputs without one, or derived). Every operation propagates it (sums of
``n`` terms, products, ``@``, public constants, reductions, joins), and an operation whose result
— or whose raw product before truncation — could leave the ring's exact range raises an
:class:`~tessera.errors.EncodingError` naming the quantity *before* anything runs: a wrapped
product would otherwise be off by 2^64 / 2^f silently. Every input has a bound (declared,
or :func:`default_bound`); a tensor without one (``None``) arises only inside the protocol
layer's own building blocks, which reason about their magnitudes themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from tessera.errors import EncodingError, ShapeError
from tessera.mpc.circuits import ltz
from tessera.ring.fixedpoint import encode
from tessera.ring.ring import RingArray, const

if TYPE_CHECKING:
    from tessera.mpc.session import Session

__all__ = ["SecretTensor", "Opened", "concatenate", "stack", "broadcast_shape", "matmul_shape", "check_bound", "default_bound"]

#: An opened value: float64 for fixed-point tensors, int64 for integer tensors (the dtype is
#: known only at run time, from the tensor's ``frac_bits``).
Opened = npt.NDArray[Any]

#: Significant bits of the multiplier used for division by a public number.
_DIV_BITS = 20

_KEEP = object()


def _limit(frac_bits: int) -> float:
    """Largest magnitude a value at ``frac_bits`` may have (encodable and exactly truncatable)."""
    return 2.0 ** (62 - frac_bits)


def default_bound(frac_bits: int) -> float:
    """The bound an input gets when none is declared: the largest power of two whose product
    with itself still fits the ring exactly, ``2^(30 - frac_bits)`` (so ``x * y`` of two such
    inputs always runs, and anything larger is checked)."""
    return 2.0 ** (30 - frac_bits)


def check_bound(bound: float | None, frac_bits: int, what: str) -> float | None:
    """``bound`` if a value that large still fits the ring at ``frac_bits``, else an EncodingError
    naming ``what`` (raised before the operation runs)."""
    if bound is not None and bound >= _limit(frac_bits):
        raise EncodingError(f"{what} could reach {bound:.3g} in magnitude, beyond the ring's exact range "
                            f"({_limit(frac_bits):.3g} at {frac_bits} fractional bits): it would wrap around; "
                            "declare tighter bounds, scale the values down, or use fewer fractional bits")
    return bound


def _times(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a * b


def broadcast_shape(s1: tuple[int, ...], s2: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcast shape, or a ShapeError naming both shapes."""
    try:
        return tuple(np.broadcast_shapes(s1, s2))
    except ValueError:
        raise ShapeError(f"shapes {s1} and {s2} cannot be broadcast together") from None


def matmul_shape(s1: tuple[int, ...], s2: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``x @ y`` under numpy's rules, or a ShapeError naming both shapes."""
    if not s1 or not s2:
        raise ShapeError(f"matmul needs operands of at least one dimension, got {s1} and {s2}")
    a = s1 if len(s1) > 1 else (1, *s1)
    b = s2 if len(s2) > 1 else (*s2, 1)
    if a[-1] != b[-2]:
        raise ShapeError(f"matmul shapes {s1} and {s2} do not fit: {a[-1]} != {b[-2]}")
    batch = broadcast_shape(a[:-2], b[:-2])
    return batch + ((a[-2],) if len(s1) > 1 else ()) + ((b[-1],) if len(s2) > 1 else ())


def _expand(shares: RingArray, ndim: int) -> RingArray:
    """Share array with value axes padded on the left to ``ndim`` (numpy broadcasting order)."""
    k, shape = shares.shape[0], shares.shape[1:]
    if len(shape) == ndim:
        return shares
    return shares.reshape((k,) + (1,) * (ndim - len(shape)) + shape)


def _value_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for a tensor of {ndim} dimensions")
    return axis % ndim + 1


class SecretTensor:
    """A secret array: this party's shares plus the public shape and fixed-point scale."""

    __slots__ = ("session", "shares", "frac_bits", "bound")
    __array_ufunc__ = None  # numpy defers to our reflected operators

    def __init__(self, session: Session, shares: RingArray, frac_bits: int, bound: float | None = None) -> None:
        self.session = session
        self.shares = shares
        self.frac_bits = frac_bits
        #: public bound on the magnitude of every value (None: not tracked)
        self.bound = bound

    # -- public metadata ---------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.shares.shape[1:])

    @property
    def ndim(self) -> int:
        return self.shares.ndim - 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_integer(self) -> bool:
        return self.frac_bits == 0

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d secret tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        return (
            f"SecretTensor(shape={self.shape}, frac_bits={self.frac_bits}, "
            f"protocol={self.session.protocol.name!r}, party={self.session.party!r})"
        )

    def __bool__(self) -> bool:
        raise TypeError("the truth value of a secret tensor is secret; reveal it or use where()")

    # -- helpers -----------------------------------------------------------------------------

    def _new(self, shares: RingArray, frac_bits: int | None = None, bound: Any = _KEEP) -> SecretTensor:
        f = self.frac_bits if frac_bits is None else frac_bits
        return SecretTensor(self.session, shares, f, self.bound if bound is _KEEP else bound)

    def _relabel(self, frac_bits: int) -> SecretTensor:
        """The same ring values read with another scale (divides the value by 2^(new - old))."""
        b = None if self.bound is None else self.bound * 2.0 ** (self.frac_bits - frac_bits)
        return SecretTensor(self.session, self.shares, frac_bits, b)

    def _rescaled(self, frac_bits: int) -> RingArray:
        """Shares at a larger scale (exact: multiplies by a power of two)."""
        if frac_bits == self.frac_bits:
            return self.shares
        return self.shares * const(1 << (frac_bits - self.frac_bits))

    def _public_frac(self, value: object) -> tuple[RingArray, int]:
        arr = np.asarray(value)
        frac = 0 if arr.dtype.kind in "biu" else self.session.frac_bits
        return arr, frac

    def _secret(self, other: object) -> SecretTensor | None:
        if isinstance(other, SecretTensor):
            self.session.check_own(other)
            return other
        return None

    # -- addition ----------------------------------------------------------------------------

    def __add__(self, other: object) -> SecretTensor:
        sec = self._secret(other)
        if sec is not None:
            shape = broadcast_shape(self.shape, sec.shape)
            f = max(self.frac_bits, sec.frac_bits)
            b = None if self.bound is None or sec.bound is None else self.bound + sec.bound
            check_bound(b, f, "a sum")
            return self._new(_expand(self._rescaled(f), len(shape)) + _expand(sec._rescaled(f), len(shape)), f, b)
        arr, pf = self._public_frac(other)
        shape = broadcast_shape(self.shape, arr.shape)
        f = max(self.frac_bits, pf)
        b = None if self.bound is None else self.bound + float(np.max(np.abs(arr), initial=0.0))
        check_bound(b, f, "a sum")
        shares = _expand(self._rescaled(f), len(shape))
        return self._new(self.session.protocol.add_public(shares, encode(arr, f)), f, b)

    __radd__ = __add__

    def __neg__(self) -> SecretTensor:
        return self._new(np.uint64(0) - self.shares)

    def __sub__(self, other: object) -> SecretTensor:
        sec = self._secret(other)
        return self + (-sec if sec is not None else -np.asarray(other))

    def __rsub__(self, other: object) -> SecretTensor:
        return (-self) + other

    # -- products ----------------------------------------------------------------------------

    def __mul__(self, other: object) -> SecretTensor:
        sec = self._secret(other)
        proto = self.session.protocol
        if sec is not None:
            broadcast_shape(self.shape, sec.shape)
            trunc = min(self.frac_bits, sec.frac_bits)
            f = max(self.frac_bits, sec.frac_bits)
            b = check_bound(_times(self.bound, sec.bound), self.frac_bits + sec.frac_bits, "a product")
            return self._new(proto.mul(self.shares, sec.shares, trunc), f, b)
        arr, pf = self._public_frac(other)
        shape = broadcast_shape(self.shape, arr.shape)
        b = check_bound(_times(self.bound, float(np.max(np.abs(arr), initial=0.0))), self.frac_bits + pf,
                        "a product by a public value")
        prod = _expand(self.shares, len(shape)) * encode(arr, pf)[None]
        trunc = min(self.frac_bits, pf)
        return self._new(proto.truncate(prod, trunc), max(self.frac_bits, pf), b)

    __rmul__ = __mul__

    def __matmul__(self, other: object) -> SecretTensor:
        sec = self._secret(other)
        proto = self.session.protocol
        if sec is not None:
            matmul_shape(self.shape, sec.shape)
            trunc = min(self.frac_bits, sec.frac_bits)
            inner = self.shape[-1]
            b = check_bound(_times(_times(self.bound, sec.bound), float(inner)), self.frac_bits + sec.frac_bits,
                            f"a matrix product (sum of {inner} products)")
            return self._new(proto.matmul(self.shares, sec.shares, trunc), max(self.frac_bits, sec.frac_bits), b)
        arr, pf = self._public_frac(other)
        matmul_shape(self.shape, arr.shape)
        col = np.abs(arr).sum(axis=0) if arr.ndim > 1 else np.abs(arr).sum(keepdims=True)
        b = check_bound(_times(self.bound, float(np.max(col, initial=0.0))), self.frac_bits + pf,
                        "a matrix product by a public matrix")
        p = encode(arr, pf)
        prod = np.stack([np.matmul(s, p) for s in self.shares])
        return self._new(proto.truncate(prod, min(self.frac_bits, pf)), max(self.frac_bits, pf), b)

    def __rmatmul__(self, other: object) -> SecretTensor:
        arr, pf = self._public_frac(other)
        matmul_shape(arr.shape, self.shape)
        row = np.abs(arr).sum(axis=-1)
        b = check_bound(_times(self.bound, float(np.max(row, initial=0.0))), self.frac_bits + pf,
                        "a matrix product by a public matrix")
        p = encode(arr, pf)
        prod = np.stack([np.matmul(p, s) for s in self.shares])
        proto = self.session.protocol
        return self._new(proto.truncate(prod, min(self.frac_bits, pf)), max(self.frac_bits, pf), b)

    def scale(self, c: float, bound: float) -> SecretTensor:
        """``self * c`` for a public real ``c``, given a public bound ``|self| <= bound``.

        For ``|c| < 1`` the value is first truncated by ``t = floor(-log2 |c|)`` bits (which costs
        at most half a ULP of the result), then multiplied by ``c * 2^t`` encoded with as many
        fractional bits as the bound allows (the product stays below 2^61). Small constants such
        as ``1 / n`` therefore keep full precision: relative error about
        2^-(61 - f - log2(bound |c|)), plus one ULP. One or two truncations.
        """
        if c == 0:
            return self * 0
        bound = bound if self.bound is None else min(bound, self.bound)
        f = self.frac_bits
        proto = self.session.protocol
        t = max(0, math.floor(-math.log2(abs(c)))) if abs(c) < 1 else 0
        shares = proto.truncate(self.shares, t) if t else self.shares
        c_t = c * 2.0**t
        frac = math.floor(61 - f - math.log2(max(bound * abs(c), 2.0**-30)))
        frac = max(0, min(frac, 61 - max(0, math.ceil(math.log2(abs(c_t))))))
        prod = shares * const(round(c_t * 2.0**frac))
        out_bound = check_bound(abs(c) * bound, f, "a product by a public constant") if self.bound is not None else None
        return self._new(proto.truncate(prod, frac), None, out_bound)

    def dot(self, other: object) -> SecretTensor:
        """numpy ``dot`` for 1-D and 2-D operands (the same as ``@`` there)."""
        return self @ other

    def __truediv__(self, other: object) -> SecretTensor:
        """Division by a public non-zero number.

        The divisor ``c`` is written as ``m / 2^s`` with a multiplier ``m`` of 20 significant
        bits; ``x`` is first truncated by ``max(0, s - 20)`` bits, multiplied by ``m`` and
        truncated by the rest. Error: at most 2 units in the last place plus a relative
        2^-20. The result must satisfy ``|x / c| < 2^(42 - frac_bits)`` (2^26 at 16 bits).
        Division by a secret is :func:`tessera.mpc.divide`.
        """
        if isinstance(other, SecretTensor):
            raise TypeError("division by a secret tensor: use tessera.mpc.functions.divide")
        arr = np.asarray(other, dtype=np.float64)
        if arr.ndim != 0:
            raise ShapeError("division by a public array: multiply by its reciprocal instead")
        c = float(arr)
        if not math.isfinite(c) or c == 0.0:
            raise ZeroDivisionError(f"division of a secret tensor by {c}")
        x = self if self.frac_bits else self._new(self._rescaled(self.session.frac_bits), self.session.frac_bits)
        if x.bound is not None:
            x = x._new(x.shares, None, check_bound(x.bound / abs(c), x.frac_bits, "a quotient"))
        inv = 1.0 / c
        e = math.floor(math.log2(abs(inv)))
        s = _DIV_BITS - 1 - e  # inv ~= m / 2^s with 2^19 <= |m| < 2^20
        m = round(inv * 2.0**s)
        proto = self.session.protocol
        if s <= 0:
            return x._new(x.shares * const(m << -s))
        pre = max(0, s - _DIV_BITS)
        shares = proto.truncate(x.shares, pre)
        return x._new(proto.truncate(shares * const(m), s - pre))

    # -- comparisons (secret 0/1 integer tensors) --------------------------------------------

    __hash__ = None  # type: ignore[assignment]  # == is elementwise and secret

    def _sign_bits(self, *diffs: SecretTensor) -> list[SecretTensor]:
        """``[d < 0]`` for several differences in one batched comparison."""
        flat = np.concatenate([d.shares.reshape(d.shares.shape[0], -1) for d in diffs], axis=1)
        bits = ltz(self.session.protocol, flat)
        out, pos = [], 0
        for d in diffs:
            out.append(SecretTensor(self.session, bits[:, pos : pos + d.size].reshape(d.shares.shape), 0, 1.0))
            pos += d.size
        return out

    def __lt__(self, other: object) -> SecretTensor:
        """Secret ``[self < other]`` (0/1, exact). About 8-9 rounds; reveals nothing."""
        return self._sign_bits(self - other)[0]

    def __gt__(self, other: object) -> SecretTensor:
        return self._sign_bits(-(self - other))[0]

    def __le__(self, other: object) -> SecretTensor:
        return 1 - (self > other)

    def __ge__(self, other: object) -> SecretTensor:
        return 1 - (self < other)

    def __eq__(self, other: object) -> SecretTensor:  # type: ignore[override]
        d = self - other
        lt, gt = self._sign_bits(d, -d)
        return 1 - lt - gt

    def __ne__(self, other: object) -> SecretTensor:  # type: ignore[override]
        d = self - other
        lt, gt = self._sign_bits(d, -d)
        return lt + gt

    # -- shape -------------------------------------------------------------------------------

    def __getitem__(self, key: Any) -> SecretTensor:
        if isinstance(key, SecretTensor):
            raise TypeError("indexing by a secret is not supported (it would reveal the index)")
        key = key if isinstance(key, tuple) else (key,)
        last = key[-1] if key else None
        if (isinstance(last, np.ndarray) and last.ndim == 1 and last.dtype.kind in "iu"
                and all(isinstance(k, slice) and k == slice(None) for k in key[:-1])):
            # one index array after full slices: a take along that axis (numpy's fancy indexing
            # copies element by element, ~3x slower on the n x 55 feature products of a fit)
            return self._new(np.take(self.shares, last, axis=len(key)))
        return self._new(self.shares[(slice(None), *key)])

    def reshape(self, *shape: int | Sequence[int]) -> SecretTensor:
        dims = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        try:
            return self._new(self.shares.reshape((self.shares.shape[0], *dims)))
        except ValueError:
            raise ShapeError(f"cannot reshape a tensor of shape {self.shape} into {dims}") from None

    def flatten(self) -> SecretTensor:
        return self.reshape(-1)

    ravel = flatten

    def transpose(self, *axes: int) -> SecretTensor:
        order = tuple(axes[0]) if len(axes) == 1 and not isinstance(axes[0], int) else axes
        if not order:
            order = tuple(range(self.ndim))[::-1]
        if sorted(order) != list(range(self.ndim)):
            raise ShapeError(f"axes {order} are not a permutation of {self.ndim} dimensions")
        return self._new(self.shares.transpose((0, *(a + 1 for a in order))))

    @property
    def T(self) -> SecretTensor:
        return self.transpose()

    # -- reductions --------------------------------------------------------------------------

    def _axes(self, axis: int | Sequence[int] | None) -> tuple[int, ...]:
        if axis is None:
            return tuple(range(1, self.ndim + 1))
        if isinstance(axis, (int, np.integer)):
            return (_value_axis(int(axis), self.ndim),)
        return tuple(_value_axis(int(a), self.ndim) for a in axis)

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> SecretTensor:
        """Sum along axes (all by default); local and exact."""
        axes = self._axes(axis)
        count = int(np.prod([self.shares.shape[a] for a in axes], dtype=np.int64))
        b = check_bound(_times(self.bound, float(count)), self.frac_bits, f"a sum of {count} values")
        return self._new(self.shares.sum(axis=axes, keepdims=keepdims, dtype=np.uint64), None, b)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> SecretTensor:
        """Mean along axes: the sum divided by the public count (see ``__truediv__``)."""
        axes = self._axes(axis)
        count = int(np.prod([self.shares.shape[a] for a in axes], dtype=np.int64))
        return self.sum(axis, keepdims) / count

    # -- output ------------------------------------------------------------------------------

    @overload
    def reveal(self, to: None = None) -> Opened: ...

    @overload
    def reveal(self, to: int | str | Sequence[int | str] | None) -> Opened | None: ...

    def reveal(self, to: int | str | Sequence[int | str] | None = None) -> Opened | None:
        """Open this tensor to ``to`` (default: all parties); ``None`` at non-recipients."""
        return self.session.reveal(self, to=to)[0]


def _join(tensors: Sequence[SecretTensor]) -> tuple[list[RingArray], int, float | None]:
    if not tensors:
        raise ShapeError("need at least one tensor")
    first = tensors[0]
    for t in tensors[1:]:
        first.session.check_own(t)
    f = max(t.frac_bits for t in tensors)
    bounds = [t.bound for t in tensors]
    bound = None if any(b is None for b in bounds) else max(b for b in bounds if b is not None)
    return [t._rescaled(f) for t in tensors], f, bound


def concatenate(tensors: Sequence[SecretTensor], axis: int = 0) -> SecretTensor:
    """numpy ``concatenate`` of secret tensors of one session (local)."""
    shares, f, b = _join(tensors)
    ax = _value_axis(axis, tensors[0].ndim)
    try:
        return tensors[0]._new(np.concatenate(shares, axis=ax), f, b)
    except ValueError as e:
        raise ShapeError(f"cannot concatenate shapes {[t.shape for t in tensors]}: {e}") from None


def stack(tensors: Sequence[SecretTensor], axis: int = 0) -> SecretTensor:
    """numpy ``stack`` of secret tensors of one session (local)."""
    shares, f, b = _join(tensors)
    ax = _value_axis(axis, tensors[0].ndim + 1)
    try:
        return tensors[0]._new(np.stack(shares, axis=ax), f, b)
    except ValueError as e:
        raise ShapeError(f"cannot stack shapes {[t.shape for t in tensors]}: {e}") from None
