"""One-hot indicator columns of categorical columns: ``channel[pos]`` is 1.0 where ``channel`` is
``"pos"``, 0.0 where it is another level, NULL where it is NULL.

An indicator is a *derived* column: it is not in the schema and not in the source. The analyses
name indicators (:meth:`tessera.analytics.base.Analysis.encode` replaces a categorical feature by
the indicators of every level but its first declared one, the reference level); the local engine
(:func:`tessera.data.load`) loads an indicator by checking its categorical column once and
comparing its level index. Levels are public (declared in the schema), so the names of the
indicators reveal nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable

from tessera.data.schema import Column, ColumnType, Schema

__all__ = ["indicator_name", "indicator_of", "indicators", "base_columns", "with_indicators"]


def indicator_name(column: str, level: str) -> str:
    """The name of the indicator of ``level`` of the categorical ``column``: ``column[level]``."""
    return f"{column}[{level}]"


def indicators(col: Column) -> list[str]:
    """The indicators one-hot encoding the categorical ``col``: one per level but the first
    declared level (the reference level, whose rows have every indicator 0)."""
    assert col.levels is not None
    return [indicator_name(col.name, lv) for lv in col.levels[1:]]


def indicator_of(schema: Schema, name: str) -> tuple[str, int] | None:
    """``(column, level index)`` if ``name`` is an indicator of a categorical column of ``schema``
    (a column of the schema is never an indicator); None otherwise."""
    if name in schema or not name.endswith("]"):
        return None
    for c in schema.columns:
        if c.type is ColumnType.CATEGORY and name.startswith(c.name + "["):
            assert c.levels is not None
            level = name[len(c.name) + 1:-1]
            if level in c.levels:
                return c.name, c.levels.index(level)
    return None


def base_columns(schema: Schema, names: Iterable[str]) -> list[str]:
    """``names`` with every indicator replaced by its categorical column, each column once, in
    order: the columns a source must have to give ``names``."""
    out: list[str] = []
    for n in names:
        ind = indicator_of(schema, n)
        base = n if ind is None else ind[0]
        if base not in out:
            out.append(base)
    return out


def with_indicators(schema: Schema, names: Iterable[str]) -> Schema:
    """``schema`` and, after its columns, a ``bool`` column for every indicator in ``names`` (as
    nullable as its categorical column): the schema of what a load of ``names`` holds."""
    extra: list[Column] = []
    for n in names:
        ind = indicator_of(schema, n)
        if ind is not None and all(c.name != n for c in extra):
            extra.append(Column(name=n, type=ColumnType.BOOL, nullable=schema.column(ind[0]).nullable))
    return schema if not extra else Schema(columns=(*schema.columns, *extra))
