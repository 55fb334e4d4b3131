import tomllib

import pytest
import tomli_w
from pydantic import ValidationError

from tessera.data.schema import Column, ColumnType, Schema
from tests.data.common import SCHEMA


def test_dict_and_toml_round_trip():
    d = SCHEMA.to_dict()
    assert list(d) == SCHEMA.names and "levels" not in d["amount"] and "min" not in d["flag"]
    assert Schema.from_dict(d) == SCHEMA
    assert Schema.from_dict(tomllib.loads(tomli_w.dumps(d))) == SCHEMA
    assert Schema.from_dict(SCHEMA.model_dump(mode="json")) == SCHEMA  # the model form too


def test_model_dump_is_unchanged_by_the_helpers():
    # contracts sign the model's canonical form: the helpers add no fields
    assert set(SCHEMA.model_dump()) == {"columns"}
    assert set(SCHEMA.model_dump()["columns"][0]) == {"name", "type", "min", "max", "levels", "nullable"}


def test_select_row_bounds_and_membership():
    sub = SCHEMA.select(["kind", "amount"])
    assert sub.names == ["kind", "amount"] and "amount" in SCHEMA and "nope" not in SCHEMA
    assert SCHEMA.row_bounds(["amount", "flag", "kind"]) == ([0.0, 0.0, 0.0], [1000.0, 1.0, 2.0])
    with pytest.raises(KeyError, match="nope"):
        SCHEMA.select(["nope"])


def test_invalid_declarations_name_the_column():
    with pytest.raises(ValidationError, match="'x'.*min and max"):
        Schema.from_dict({"x": "float"})
    with pytest.raises(ValidationError, match="'c'.*levels"):
        Schema.from_dict({"c": {"type": "category", "levels": ["a", "a"]}})
    assert Column(name="b", type="bool").type is ColumnType.BOOL
