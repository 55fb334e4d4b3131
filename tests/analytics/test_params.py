"""Typed parameters: every analysis declares its model, and invalid parameters are a ParamsError."""

import pytest

from tessera import analytics
from tessera.analytics.base import Params
from tessera.analytics.regression import LinRegParams
from tessera.errors import ParamsError, PlanError


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
    assert "linear_regression v1.0" in str(err) and "target: Field required" in str(err)
    assert "colour: Extra inputs are not permitted" in str(err)
    assert isinstance(err, PlanError) and isinstance(err, ValueError)  # callers catching either keep working


def test_a_model_level_problem_is_reported_for_the_parameters():
    with pytest.raises(ParamsError, match=r"\(parameters\): Value error, the target 'y' is also a feature"):
        analytics.get("linear_regression").parse_params({"features": ["x", "y"], "target": "y"})
