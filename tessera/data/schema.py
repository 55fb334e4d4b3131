"""Dataset schemas: the columns a party declares, with types, bounds and nullability.

The same objects appear in the collaboration contract; bounds drive fixed-point encodings,
overflow checks and differential-privacy sensitivities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tessera.errors import UnknownColumn

__all__ = ["ColumnType", "Column", "Schema"]


class ColumnType(StrEnum):
    """How a column's values are read: reals, whole numbers, booleans, or public categories."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    CATEGORY = "category"


class Column(BaseModel):
    """One column: its name, type, declared bounds (numeric types) or public levels (category)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    type: ColumnType
    min: float | None = None
    max: float | None = None
    levels: tuple[str, ...] | None = None
    nullable: bool = False

    @model_validator(mode="after")
    def _check(self) -> Column:
        if self.type in (ColumnType.FLOAT, ColumnType.INT):
            if self.min is None or self.max is None:
                raise ValueError(f"column {self.name!r}: numeric columns need declared min and max")
            if not self.min <= self.max:
                raise ValueError(f"column {self.name!r}: min {self.min} is above max {self.max}")
        if self.type is ColumnType.CATEGORY and (not self.levels or len(set(self.levels)) != len(self.levels)):
            raise ValueError(f"column {self.name!r}: a category needs distinct public levels")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """Declared (min, max); booleans are (0, 1), categories index their levels."""
        if self.type is ColumnType.BOOL:
            return (0.0, 1.0)
        if self.type is ColumnType.CATEGORY:
            assert self.levels is not None
            return (0.0, float(len(self.levels) - 1))
        assert self.min is not None and self.max is not None
        return (self.min, self.max)

    def to_dict(self) -> dict[str, Any]:
        """The column as a TOML-friendly table: ``type`` and only the fields that are set
        (TOML has no null), without the name, which is the table's key in :meth:`Schema.to_dict`."""
        out: dict[str, Any] = {"type": self.type.value}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.levels is not None:
            out["levels"] = list(self.levels)
        if self.nullable:
            out["nullable"] = True
        return out


class Schema(BaseModel):
    """An ordered set of columns with unique names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: tuple[Column, ...]

    @model_validator(mode="after")
    def _unique(self) -> Schema:
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate column names: {dup}")
        return self

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise UnknownColumn(f"no column {name!r}; columns are {self.names}")

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.columns)

    def select(self, names: Iterable[str]) -> Schema:
        """The sub-schema of ``names``, in that order (:class:`~tessera.errors.UnknownColumn`, a
        ``KeyError``, naming any unknown column)."""
        names = list(names)
        unknown = [n for n in names if n not in self]
        if unknown:
            raise UnknownColumn(f"no columns {unknown}; columns are {self.names}")
        return Schema(columns=tuple(self.column(n) for n in names))

    def row_bounds(self, names: Iterable[str] | None = None) -> tuple[list[float], list[float]]:
        """The box every valid row lies in: per-column lower and upper bounds of ``names``
        (default: all columns), in that order. Booleans are ``[0, 1]``; categories
        ``[0, levels - 1]`` (their level index), as :attr:`Column.bounds`."""
        cols = self.columns if names is None else self.select(names).columns
        return [c.bounds[0] for c in cols], [c.bounds[1] for c in cols]

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """A TOML-friendly mapping ``{name: {type, min, max, levels, nullable}}`` in column
        order; :meth:`from_dict` reads it back."""
        return {c.name: c.to_dict() for c in self.columns}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        """A schema from a plain mapping, e.g. a TOML table. Accepts the model form
        ``{"columns": [{"name": ..., "type": ...}, ...]}`` and the compact form
        ``{name: {"type": "float", "min": 0, "max": 1}, name2: "bool", ...}`` (a bare type
        string for columns needing no bounds or levels). Raises pydantic's ValidationError,
        naming the column, for an invalid declaration."""
        if set(data) == {"columns"} and isinstance(data["columns"], (list, tuple)):
            return cls.model_validate(data)
        cols = []
        for name, spec in data.items():
            fields = {"type": spec} if isinstance(spec, str) else dict(spec)
            cols.append(Column(name=name, **fields))
        return cls(columns=tuple(cols))
