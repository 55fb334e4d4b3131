"""Identifier normalisation and the duplicate rule (documented in tessera/psi/_ids.py)."""

import numpy as np
import pandas as pd
import pytest

from tessera.errors import DataError
from tessera.psi import Normalisation
from tessera.psi._ids import prepare_ids

N = Normalisation()


@pytest.mark.parametrize(
    "a, b",
    [
        ("AB12", "ab12"),
        ("  cust-001\t", "cust-001"),
        ("Straße", "STRASSE"),
        ("１２３ＡＢＣ", "123abc"),  # full-width forms
        ("Cafe\u0301", "Café"),  # combining accent vs precomposed
        ("x\u00a0y", "x y"),  # no-break space
        (123, "123"),
        (np.int64(-7), "-7"),
        ("ΣΊΣΥΦΟΣ", "σίσυφος"),
    ],
)
def test_equivalent_identifiers_normalise_equal(a, b):
    assert prepare_ids([a], N).keys == prepare_ids([b], N).keys


@pytest.mark.parametrize("a, b", [("0123", "123"), ("DE89 3704", "DE893704"), ("a-b", "ab"), (1, "1.0")])
def test_distinct_identifiers_stay_distinct(a, b):
    assert prepare_ids([a], N).keys != prepare_ids([b], N).keys


def test_options_can_keep_case_and_whitespace():
    strict = Normalisation(form="NFC", casefold=False, strip=False)
    assert prepare_ids(["AB", "ab", " ab"], strict).keys == [b"AB", b"ab", b" ab"]
    assert strict.describe() != N.describe()


def test_duplicates_collapse_to_the_first_row():
    p = prepare_ids(["x", "y", "X ", "z", "y", 5, "5"], N)
    assert p.keys == [b"x", b"y", b"z", b"5"]
    assert p.rows.tolist() == [0, 1, 3, 5]
    assert p.n_rows == 7 and p.duplicates == 3


def test_numpy_and_pandas_inputs():
    assert prepare_ids(np.arange(3), N).keys == [b"0", b"1", b"2"]
    assert prepare_ids(np.array(["A", "b"]), N).keys == [b"a", b"b"]
    assert prepare_ids(pd.Series([10, 20]), N).keys == [b"10", b"20"]


@pytest.mark.parametrize(
    "bad, words",
    [
        (["cust-4711", None], "missing"),
        (["cust-4711", float("nan")], "missing"),
        (["cust-4711", 1.5], "floats"),
        (["cust-4711", True], "booleans"),
        (["cust-4711", b"cust-4712"], "unsupported"),
        (["cust-4711", "  "], "empty"),
        (["cust-4711", "x\ud800"], "not valid Unicode"),
        (["cust-4711", pd.NA], "missing"),
    ],
)
def test_unusable_identifiers_are_rejected_by_count_never_value(bad, words):
    with pytest.raises(DataError) as e:
        prepare_ids(bad, N)
    assert words in str(e.value)
    assert "4711" not in str(e.value) and "4712" not in str(e.value) and "1.5" not in str(e.value)
