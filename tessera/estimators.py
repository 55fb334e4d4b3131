"""A scikit-learn-style front for the secure regressions: ``fit`` trains on several parties' rows
by a secure job (:func:`~tessera.jobs.local.run_local`); ``predict``, ``predict_proba``,
``decision_function`` and ``score`` then run on a party's *own* rows, locally and in plaintext.

    model = tessera.LogisticRegression(C=1.0).fit(parties, schema, target="is_fraud", runtime="threads")
    model.coef_, model.intercept_, model.classes_      # as scikit-learn's
    model.predict_proba(my_rows)                       # a DataFrame (columns by name) or an array
    print(model.result_.summary())                     # the job's result: SEs, z, p-values

The estimators follow scikit-learn's conventions (``get_params`` / ``set_params``, ``__init__``
stores its arguments unchanged, fitted attributes end in ``_``, ``sklearn.base.clone`` works),
without importing scikit-learn. What a fit reveals is what its job's plan says
(``model.result_.revealed``): the coefficients (and for ``LogisticRegression`` with
``inference=True``, their standard errors) and the row count.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from tessera import plots
from tessera.analytics.results import Result
from tessera.data.schema import ColumnType, Schema
from tessera.errors import PlanError, TesseraError
from tessera.jobs.local import LocalResult, PartyData, run_local

__all__ = ["LogisticRegression", "LinearRegression", "NotFittedError"]


class NotFittedError(TesseraError, AttributeError):
    """An estimator was asked to predict before ``fit``."""


class _SecureEstimator:
    """``get_params``/``set_params`` from ``__init__``'s signature, ``fit`` by a secure job, and
    local prediction on a party's own rows."""

    #: the analysis ``fit`` runs
    _analysis: ClassVar[str]

    coef_: npt.NDArray[np.float64]
    feature_names_in_: npt.NDArray[np.object_]
    n_features_in_: int
    result_: Result
    local_result_: LocalResult

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters and their values (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> _SecureEstimator:
        """Set constructor parameters by name; an unknown name is a :class:`PlanError` naming it."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise PlanError(f"{type(self).__name__} has no parameter {name!r}; its parameters are "
                                f"{', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        changed = [f"{n}={getattr(self, n)!r}" for n, p in sig.parameters.items()
                   if n != "self" and getattr(self, n) != p.default]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _job_params(self) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, parties: Mapping[str, PartyData], schema: Schema, *, target: str, features: list[str] | None = None,
            **run_kw: Any) -> _SecureEstimator:
        """Train on ``parties`` (name -> DataFrame or CSV/Parquet path) by a secure job; every other
        keyword goes to :func:`~tessera.jobs.local.run_local` (``runtime``, ``protocol``,
        ``partition``, ... and further analysis parameters). ``features`` default: every numeric
        or boolean column of ``schema`` but the target."""
        if features is None:
            features = [c.name for c in schema.columns if c.name != target
                        and c.type in (ColumnType.FLOAT, ColumnType.INT, ColumnType.BOOL)]
        res = run_local(self._analysis, parties, schema, features=list(features), target=target,
                        **{**self._job_params(), **run_kw})
        self.local_result_ = res
        self.result_ = res.result
        coef = np.asarray(res["coefficients"], dtype=np.float64).reshape(-1)
        self._set_coefficients(coef)
        self.feature_names_in_ = np.asarray(features, dtype=object)
        self.n_features_in_ = len(features)
        return self

    def _set_coefficients(self, coef: npt.NDArray[np.float64]) -> None:
        raise NotImplementedError

    def _rows(self, x: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The feature matrix of a party's own rows: a DataFrame's feature columns by name, or an
        array with the features in fit order."""
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        if isinstance(x, pd.DataFrame):
            missing = [c for c in self.feature_names_in_ if c not in x.columns]
            if missing:
                raise PlanError(f"the rows have no column {missing[0]!r}; the model's features are "
                                f"{', '.join(self.feature_names_in_)}")
            return np.asarray(x[list(self.feature_names_in_)].to_numpy(dtype=np.float64), dtype=np.float64)
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise PlanError(f"expected rows of {self.n_features_in_} features, got an array of shape {arr.shape}")
        return arr

    def _linear(self, x: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.float64]:
        raise NotImplementedError

    def summary(self) -> Any:
        """The fit's statsmodels-like summary (the secure job's result)."""
        if not hasattr(self, "result_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit first")
        return self.result_.summary()


class LogisticRegression(_SecureEstimator):
    """Binary logistic regression trained by a secure ``logistic_regression`` job, as
    scikit-learn's ``LogisticRegression`` (``penalty="l2"`` with ``C``, or ``penalty=None``).

    ``max_iter`` is the number of Newton iterations (at most 50; Newton converges in a few);
    ``inference`` releases standard errors (see :class:`~tessera.analytics.results.LogitResult`);
    ``max_inverse`` bounds the Hessian's conditioning (checked by the job's guard)."""

    _analysis = "logistic_regression"

    intercept_: npt.NDArray[np.float64]
    classes_: npt.NDArray[np.bool_]

    def __init__(self, penalty: str | None = "l2", C: float = 1.0, max_iter: int = 8, inference: bool = True,
                 max_inverse: float = 1e4) -> None:
        self.penalty = penalty
        self.C = C
        self.max_iter = max_iter
        self.inference = inference
        self.max_inverse = max_inverse

    def _job_params(self) -> dict[str, Any]:
        if self.penalty not in ("l2", None):
            raise PlanError(f"penalty is 'l2' or None, not {self.penalty!r}")
        return {"C": self.C if self.penalty == "l2" else None, "iterations": self.max_iter,
                "inference": self.inference, "max_inverse": self.max_inverse}

    def _set_coefficients(self, coef: npt.NDArray[np.float64]) -> None:
        self.intercept_ = coef[:1].copy()
        self.coef_ = coef[1:].reshape(1, -1)
        self.classes_ = np.array([False, True])

    def decision_function(self, x: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The log-odds ``intercept_ + x coef_`` of each row."""
        return np.asarray(self._rows(x) @ self.coef_[0] + self.intercept_[0], dtype=np.float64)

    def predict_proba(self, x: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``[P(False), P(True)]`` per row."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(x)))
        return np.column_stack([1 - p, p])

    def predict(self, x: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """The class of each row (True where the log-odds are positive)."""
        positive = self.decision_function(x) > 0
        return np.asarray(self.classes_[positive.astype(int)])

    def plot_roc(self, x: pd.DataFrame | npt.ArrayLike, y: npt.ArrayLike, ax: Any = None) -> Any:
        """The ROC curve of the model on a party's own rows ``x`` with labels ``y`` (drawn locally
        from this party's data only; needs matplotlib: ``pip install tessera[plots]``)."""
        return plots.roc(np.asarray(y).astype(float), self.decision_function(x), ax=ax,
                         title=f"ROC on own rows ({len(np.asarray(y))} rows)")

    def score(self, x: pd.DataFrame | npt.ArrayLike, y: npt.ArrayLike) -> float:
        """Accuracy on the rows ``x`` with labels ``y`` (a party's own holdout)."""
        truth = np.asarray(y).astype(float) > 0.5
        return float(np.mean(self.predict(x) == truth))


class LinearRegression(_SecureEstimator):
    """Least squares with an intercept trained by a secure ``linear_regression`` job, as
    scikit-learn's ``LinearRegression`` (``alpha > 0``: ``Ridge(alpha)``, the intercept not
    penalised). ``max_inverse`` bounds the features' collinearity (checked by the job's guard)."""

    _analysis = "linear_regression"

    intercept_: float

    def __init__(self, alpha: float = 0.0, max_inverse: float = 100.0) -> None:
        self.alpha = alpha
        self.max_inverse = max_inverse

    def _job_params(self) -> dict[str, Any]:
        return {"ridge": self.alpha, "max_inverse": self.max_inverse}

    def _set_coefficients(self, coef: npt.NDArray[np.float64]) -> None:
        self.intercept_ = float(coef[0])
        self.coef_ = coef[1:].copy()

    def predict(self, x: pd.DataFrame | npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``intercept_ + x coef_`` per row."""
        return np.asarray(self._rows(x) @ self.coef_ + self.intercept_, dtype=np.float64)

    def score(self, x: pd.DataFrame | npt.ArrayLike, y: npt.ArrayLike) -> float:
        """R^2 of the predictions on the rows ``x`` against ``y`` (a party's own rows)."""
        truth = np.asarray(y, dtype=np.float64)
        resid = truth - self.predict(x)
        return float(1 - (resid @ resid) / ((truth - truth.mean()) @ (truth - truth.mean())))
