"""Typed parameters: every analysis declares its model, invalid parameters are a ParamsError
naming every field (never pydantic's ValidationError), command-line text is read by the model's
types (one-item lists, numbers), and the catalogue is generated from the models."""

import typing

import pytest
from pydantic import ValidationError

from tessera import analytics
from tessera.analytics.base import Params
from tessera.analytics.registry import catalogue, describe
from tessera.analytics.regression import LinRegParams
from tessera.cli.params import read_params
from tessera.data.schema import Schema
from tessera.errors import ParamsError, PlanError, UnknownColumn


def test_every_analysis_declares_a_parameter_model():
    for name, versions in analytics.available().items():
        for v in versions:
            a = analytics.get(name, v)
            assert issubclass(a.params_model, Params), name
            assert "Params" not in vars(type(a)), f"{name} still has the old attribute name"


def test_parse_params_returns_the_analysis_model():
    p = analytics.get("linear_regression").parse_params({"features": ["x"], "target": "y"})
    assert isinstance(p, LinRegParams) and p.features == ["x"] and p.ridge == 0.0


def test_invalid_params_name_every_field_and_problem():
    a = analytics.get("linear_regression")
    with pytest.raises(ParamsError) as e:
        a.parse_params({"features": [], "ridge": -1, "colour": "red"})
    err = e.value
    fields = [f for f, _ in err.problems]
    assert fields == ["features", "target", "ridge", "colour"]
    assert "linear_regression v1.0" in str(err) and "target: required" in str(err)
    assert "features: List should have at least 1 item" in str(err)
    assert "colour: not a parameter; the parameters are features, target, ridge, max_inverse, max_rows" in str(err)
    assert isinstance(err, PlanError) and isinstance(err, ValueError)  # callers catching either keep working


def test_a_model_level_problem_is_reported_for_the_parameters():
    with pytest.raises(ParamsError, match=r"\(parameters\): Value error, the target 'y' is also a feature"):
        analytics.get("linear_regression").parse_params({"features": ["x", "y"], "target": "y"})


def test_an_unknown_parameter_names_the_closest_one():
    with pytest.raises(ParamsError) as e:
        analytics.get("logistic_regression").parse_params({"features": ["x"], "target": "y", "iteration": 5})
    assert e.value.problems == [("iteration", "not a parameter (did you mean 'iterations'?); the parameters are "
                                              "features, target, iterations, C, holdout_fraction, max_inverse, max_rows, "
                                              "inference")]


def test_parameters_that_are_not_a_table_are_a_params_error():
    with pytest.raises(ParamsError, match=r"\(parameters\): a table of named parameters is expected, not list"):
        analytics.get("describe").parse_params(["amount"])  # type: ignore[arg-type]


def test_parse_params_never_lets_a_validation_error_out():
    """Whatever the raw values, every analysis answers ParamsError (a PlanError), never pydantic's."""
    junk = [None, 1, "x", [1, "a"], {"a": 1}, float("nan"), True]
    for name in analytics.available():
        a = analytics.get(name)
        for field in a.params_model.model_fields:
            for value in junk:
                try:
                    a.parse_params({field: value})
                except ParamsError:
                    pass
                except ValidationError as e:  # pragma: no cover - the failure this test guards
                    pytest.fail(f"{name}.{field}={value!r}: a raw ValidationError: {e}")


# --- the command line: text read by the model's types ----------------------------------------

@pytest.mark.parametrize(("analysis", "items", "want"), [
    ("linear_regression", ["features=hour", "target=amount"], {"features": ["hour"], "target": "amount"}),
    ("linear_regression", ["features=hour, risk", "target=y", "ridge=0.5"],
     {"features": ["hour", "risk"], "target": "y", "ridge": 0.5}),
    ("describe", ["columns=amount", "extremes=true"], {"columns": ["amount"], "extremes": True}),
    ("quantiles", ["column=amount", "q=0.5"], {"column": "amount", "q": [0.5]}),
    ("quantiles", ["column=amount", "q=[0.25,0.75]", "precision=null"], {"column": "amount", "q": [0.25, 0.75],
                                                                           "precision": None}),
    ("histogram", ["column=amount", "edges=0,10,100"], {"column": "amount", "edges": [0, 10, 100]}),
    ("logistic_regression", ["features=x", "target=true", "C=1", "iterations=10"],
     {"features": ["x"], "target": "true", "C": 1, "iterations": 10}),  # a text parameter stays text
    ("ttest", ["value=1", "group=treated"], {"value": "1", "group": "treated"}),
])
def test_command_line_text_is_read_by_the_parameter_types(analysis, items, want):
    a = analytics.get(analysis)
    raw = read_params(a.params_model, items)
    assert raw == want
    parsed = a.parse_params(raw)  # and it validates
    for k, v in want.items():
        assert getattr(parsed, k) == v


def _is_list(annotation: object) -> bool:
    if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return typing.get_origin(annotation) in (list, tuple, set, frozenset)


def test_every_list_parameter_of_every_analysis_takes_one_item():
    seen = 0
    for name in analytics.available():
        model = analytics.get(name).params_model
        for field, info in model.model_fields.items():
            if _is_list(info.annotation):
                item = read_params(model, [f"{field}=7"])[field]
                assert isinstance(item, list) and len(item) == 1, (name, field, item)
                seen += 1
    assert seen >= 10


def test_a_command_line_item_without_a_value_or_given_twice_is_a_params_error():
    model = analytics.get("describe").params_model
    with pytest.raises(ParamsError, match="columns: expected KEY=VALUE"):
        read_params(model, ["columns"])
    with pytest.raises(ParamsError, match="columns: given twice"):
        read_params(model, ["columns=a", "columns=b"])


def test_an_unknown_column_is_a_plan_error_naming_it():
    schema = Schema.model_validate({"columns": [{"name": "amount", "type": "float", "min": 0, "max": 1},
                                                {"name": "hour", "type": "int", "min": 0, "max": 23}]})
    a = analytics.get("linear_regression")
    with pytest.raises(PlanError) as e:
        a.plan(schema, a.parse_params({"features": ["hour"], "target": "amout"}), "horizontal", ["P0", "P1"])
    assert str(e.value) == "no column 'amout'; columns are ['amount', 'hour']"  # not quoted like a KeyError's
    with pytest.raises(UnknownColumn) as lookup:  # every lookup by name, whoever makes it
        schema.column("amout")
    assert isinstance(lookup.value, PlanError) and isinstance(lookup.value, KeyError)
    assert str(lookup.value) == str(e.value)


# --- the catalogue -----------------------------------------------------------------------------

def test_the_catalogue_lists_every_analysis_with_every_parameter():
    infos = {i.name: i for i in catalogue()}
    assert set(infos) == set(analytics.available())
    for name, info in infos.items():
        model = analytics.get(name).params_model
        assert [p.name for p in info.params] == list(model.model_fields)
        assert info.reveals and info.summary and info.version == analytics.available()[name][-1]
    lr = {p.name: p for p in describe("logistic_regression").params}
    assert (lr["features"].type, lr["features"].required, lr["features"].constraints) == ("list[str]", True,
                                                                                        "at least 1 item")
    assert (lr["iterations"].type, lr["iterations"].default, lr["iterations"].constraints) == ("int", 8,
                                                                                             ">= 1, <= 50")
    assert lr["C"].type == "float | None" and lr["C"].default is None and "scikit-learn's C" in lr["C"].description


def test_describing_an_unknown_analysis_names_the_closest():
    with pytest.raises(PlanError, match=r"no analysis named 'logistic' \(did you mean 'logistic_regression'\?\)"):
        describe("logistic")
