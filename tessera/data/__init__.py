"""The data layer: schemas, the local engine that loads and checks a party's rows, synthetic data.

* :mod:`tessera.data.schema` — :class:`Schema`, :class:`Column`, :class:`ColumnType`;
* :mod:`tessera.data.local` — :func:`load` a DataFrame, CSV, Parquet or SQL source into a checked
  :class:`LocalTable` (numpy arrays, sums in DuckDB); :func:`validate` without loading;
* :mod:`tessera.data.draft` — :func:`draft_schema`: a schema proposed from data, for review;
* :mod:`tessera.data.spark` — the same checks and reductions in a Spark cluster
  (:class:`SparkSource`, the ``spark`` extra); :mod:`tessera.data.reductions` writes their SQL once;
* :mod:`tessera.data.synthetic` — generators with known ground truth (banks, hospitals).

Imports only :mod:`tessera.errors` from the rest of Tessera.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tessera.data.checks import Violation
    from tessera.data.draft import SchemaDraft, draft_schema
    from tessera.data.local import LocalTable, load, validate, write_parquet
    from tessera.data.results import Sums, ValidationReport
    from tessera.data.schema import Column, ColumnType, Schema
    from tessera.data.sources import Source, SparkSource, SqlSource

__all__ = [
    "Schema",
    "Column",
    "ColumnType",
    "Source",
    "SqlSource",
    "SparkSource",
    "load",
    "validate",
    "write_parquet",
    "LocalTable",
    "ValidationReport",
    "Violation",
    "Sums",
    "draft_schema",
    "SchemaDraft",
]

#: Imported when first used: ``tessera.data.schema`` (what contracts and jobs need) loads no
#: numpy, DuckDB nor the schema drafter.
_LAZY = {"Violation": "tessera.data.checks", "SchemaDraft": "tessera.data.draft",
         "draft_schema": "tessera.data.draft", "LocalTable": "tessera.data.local", "load": "tessera.data.local",
         "validate": "tessera.data.local", "write_parquet": "tessera.data.local", "Sums": "tessera.data.results",
         "ValidationReport": "tessera.data.results", "Column": "tessera.data.schema",
         "ColumnType": "tessera.data.schema", "Schema": "tessera.data.schema", "Source": "tessera.data.sources",
         "SparkSource": "tessera.data.sources", "SqlSource": "tessera.data.sources"}


def __getattr__(name: str) -> Any:
    # tessera._exports.lazy_exports, written out: the data layer imports nothing of Tessera but
    # the error tree (tests/data/test_layer.py)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
