"""Identifier normalisation and the duplicate rule.

Two parties' identifiers match exactly when their *normalised* forms are equal byte for byte.
The default normalisation (:class:`Normalisation`) is what customer identifiers held by two
banks usually need to match:

* **strings**: Unicode NFKC (compatibility forms fold: full-width ``"１２３"`` is ``"123"``,
  a no-break space is a space), then full Unicode case folding (``"Straße"`` and
  ``"STRASSE"`` match, ``"AB12"`` and ``"ab12"`` match), NFKC again (case folding can
  denormalise), then leading and trailing whitespace stripped. Inner whitespace and
  punctuation are kept: ``"DE89 3704"`` does not match ``"DE893704"``, and leading zeros are
  kept: ``"0123"`` does not match ``"123"``. Remove formatting in the data layer if the
  identifiers carry it.
* **integers** (Python ``int`` or numpy integers) become their canonical decimal text (no
  leading zeros, ``-`` for negatives), so the integer ``123`` matches the string ``"123"``.
* **rejected** with :class:`~tessera.errors.DataError` (messages give counts, never values):
  missing values (``None``, NaN, pandas ``NA``), floats (``1.0`` or ``1`` is ambiguous: convert to int or
  str first), booleans, other types, text that is not valid Unicode (lone surrogates), and
  identifiers that are empty after normalisation.

The normalised text is encoded as UTF-8 and hashed to the group with the job's salt.

**Duplicates**: identifiers whose normalised forms are equal are one element of the party's
set. Each element stands for the *first* row (lowest index) that carries it; later rows with the
same identifier appear in no output, and :attr:`PreparedIds.duplicates` counts them so the caller
can warn or refuse. Duplicates are collapsed before anything is sent, so peers learn only the
number of distinct identifiers.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tessera.errors import DataError

__all__ = ["Normalisation", "PreparedIds", "prepare_ids"]


@dataclass(frozen=True)
class Normalisation:
    """How identifiers are normalised before hashing; every party of a job must use the same."""

    form: Literal["NFKC", "NFC"] = "NFKC"
    casefold: bool = True
    strip: bool = True

    def describe(self) -> str:
        """A canonical description, compared between parties before any identifier is hashed."""
        return f"v1:{self.form}:casefold={int(self.casefold)}:strip={int(self.strip)}:int=decimal"

    def text(self, value: str) -> str:
        """The normalised form of one string."""
        if value.isascii():  # ASCII is invariant under NFC/NFKC; casefold is lower() on ASCII
            s = value.lower() if self.casefold else value
        else:
            s = unicodedata.normalize(self.form, value)
            if self.casefold:
                s = unicodedata.normalize(self.form, s.casefold())
        return s.strip() if self.strip else s


@dataclass(frozen=True)
class PreparedIds:
    """A party's distinct normalised identifiers and the row each stands for."""

    keys: list[bytes]
    """Distinct normalised identifiers (UTF-8), in order of first occurrence."""
    rows: np.ndarray
    """``rows[i]`` is the index of the first input row carrying ``keys[i]`` (int64)."""
    n_rows: int
    """Number of input rows."""

    @property
    def duplicates(self) -> int:
        """Rows dropped because an earlier row carries the same normalised identifier."""
        return self.n_rows - len(self.keys)


_MISSING_TYPES = frozenset({"NAType", "NaTType"})  # pandas' missing-value markers


def _as_list(ids: Iterable[object]) -> list[object]:
    tolist = getattr(ids, "tolist", None)  # numpy arrays, pandas Series: native Python scalars
    if callable(tolist):
        out = tolist()
        if isinstance(out, list):
            return out
    return list(ids)


def prepare_ids(ids: Iterable[object], norm: Normalisation) -> PreparedIds:
    """Normalise ``ids`` (strings or integers) and collapse duplicates to their first row."""
    values = _as_list(ids)
    first: dict[bytes, int] = {}
    missing = floats = bools = empty = bad_text = 0
    others: set[str] = set()
    for row, v in enumerate(values):
        if isinstance(v, str):
            s = norm.text(v)
        elif isinstance(v, (bool, np.bool_)):
            bools += 1
            continue
        elif isinstance(v, (int, np.integer)):
            s = str(int(v))
        elif v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ in _MISSING_TYPES:
            missing += 1
            continue
        elif isinstance(v, (float, np.floating)):
            floats += 1
            continue
        else:
            others.add(type(v).__name__)
            continue
        if not s:
            empty += 1
            continue
        try:
            first.setdefault(s.encode("utf-8"), row)
        except UnicodeEncodeError:  # lone surrogates
            bad_text += 1
    problems = []
    if missing:
        problems.append(f"{missing} identifier(s) are missing (None or NaN): drop or fill those rows")
    if floats:
        problems.append(f"{floats} identifier(s) are floats: convert the column to int or str")
    if bools:
        problems.append(f"{bools} identifier(s) are booleans")
    if others:
        problems.append(f"identifiers of unsupported type(s) {sorted(others)}: use str or int")
    if empty:
        problems.append(f"{empty} identifier(s) are empty after normalisation")
    if bad_text:
        problems.append(f"{bad_text} identifier(s) are not valid Unicode text")
    if problems:
        raise DataError("PSI identifiers rejected: " + "; ".join(problems))
    return PreparedIds(list(first), np.fromiter(first.values(), dtype=np.int64, count=len(first)), len(values))
