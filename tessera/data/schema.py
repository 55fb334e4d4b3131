"""Dataset schemas: the columns a party declares, with types, bounds and nullability.

The same objects appear in the collaboration contract; bounds drive fixed-point encodings,
overflow checks and differential-privacy sensitivities.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ColumnType", "Column", "Schema"]


class ColumnType(str, Enum):
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
    def _check(self) -> "Column":
        if self.type in (ColumnType.FLOAT, ColumnType.INT):
            if self.min is None or self.max is None:
                raise ValueError(f"column {self.name!r}: numeric columns need declared min and max")
            if not self.min <= self.max:
                raise ValueError(f"column {self.name!r}: min {self.min} is above max {self.max}")
        if self.type is ColumnType.CATEGORY:
            if not self.levels or len(set(self.levels)) != len(self.levels):
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


class Schema(BaseModel):
    """An ordered set of columns with unique names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: tuple[Column, ...]

    @model_validator(mode="after")
    def _unique(self) -> "Schema":
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
        raise KeyError(f"no column {name!r}; columns are {self.names}")
