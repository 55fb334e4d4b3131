"""#14: ``explain`` states the accuracy of every released value of every analysis — or says the
value is exact, public, or noisy by design (DP)."""

import pytest

from tessera.data.schema import Column, Schema
from tessera.execution.steps import plan_analysis as make_plan

SCHEMA = Schema(columns=(Column(name="x", type="float", min=0.0, max=1e6),
                         Column(name="y", type="float", min=-50.0, max=50.0),
                         Column(name="g", type="bool"),
                         Column(name="c", type="category", levels=["a", "b", "c"]),
                         Column(name="d", type="category", levels=["u", "v"])))

#: words that state how good a released value is (or that it is exact or public by definition)
STATED = ("accuracy", "exact", "public", "noise", "noisy", "bits", "count", "suppressed", "post-processing",
          "public function", "to within", "sizes", "size", "rows", "|error|", "relative")

CASES = [
    ("describe", {"columns": ["x", "y"]}),
    ("covariance", {"columns": ["x", "y"]}),
    ("correlation", {"columns": ["x", "y"]}),
    ("ttest", {"value": "x", "group": "g"}),
    ("chi2", {"row": "c", "column": "d"}),
    ("linear_regression", {"features": ["x"], "target": "y"}),
    ("logistic_regression", {"features": ["x", "y"], "target": "g"}),
    ("meta_analysis", {"outcome": "y", "treatment": "g"}),
    ("histogram", {"column": "y", "edges": [-50.0, 0.0, 50.0]}),
    ("quantiles", {"column": "y", "q": [0.5]}),
]


@pytest.mark.parametrize("analysis, params", CASES)
def test_every_release_states_its_accuracy(analysis, params):
    _, _, plan = make_plan(analysis, None, params, SCHEMA, "horizontal", ["a", "b", "c"])
    text = plan.explain()
    for r in plan.release:
        assert any(w in r.description.lower() for w in STATED), f"{analysis}: {r.name}: {r.description}"
        assert r.description in text


def test_logistic_coefficients_state_the_guarded_bound():
    _, _, plan = make_plan("logistic_regression", None, {"features": ["x", "y"], "target": "g"}, SCHEMA,
                           "horizontal", ["a", "b", "c"])
    coef = next(r for r in plan.release if r.name == "coefficients")
    assert "accuracy: each within the last Newton step" in coef.description and "guard" in coef.description
    se = next(r for r in plan.release if r.name == "std_errors")
    assert "accuracy: relative" in se.description
