"""Result objects: a job's released outputs, named and laid out as statsmodels, scipy and pandas
users expect.

Every analysis turns the outputs a recipient received into a :class:`Result`
(:meth:`tessera.analytics.base.Analysis.result`): a class of its own where one fits
(:class:`RegressionResult`, :class:`LogitResult`, :class:`TTestResult`, :class:`Chi2Result`,
:class:`MatrixResult`, :class:`DescribeResult`, :class:`MetaResult`, :class:`HistogramResult`,
:class:`QuantilesResult`), the generic :class:`Result` otherwise. Every result has

* named estimates: pandas Series/DataFrames indexed by feature or column; a regression's
  intercept is named ``"const"`` (:data:`INTERCEPT`, as statsmodels' ``add_constant``);
* ``summary()``: a statsmodels-like text table (a :class:`Summary`; it also renders as HTML);
* ``to_frame()`` (pandas) and ``to_dict()`` (plain JSON-able lists and numbers; NaN and
  infinities become ``None``);
* ``revealed`` (what the job revealed, to whom) and ``plan`` (the plan's text), and the raw
  ``outputs`` (``result["coefficients"]`` still works);
* a short ``repr`` and ``_repr_html_`` for notebooks, and ``plot()`` (:mod:`tessera.plots`).

Nothing here computes on secret data: every value is a public function of the released outputs
(p-values, intervals, adjusted R^2, the expected table from released margins). pandas and scipy
are imported when a result is first asked for a frame or a p-value (a party process never is).
"""

from __future__ import annotations

from tessera.analytics.results._core import INTERCEPT, Result, Summary, Table, format_value, plain
from tessera.analytics.results.regression import LogitResult, RegressionResult
from tessera.analytics.results.statistical_tests import Chi2Result, ConfidenceInterval, TTestResult
from tessera.analytics.results.tables import DescribeResult, HistogramResult, MatrixResult, MetaResult, QuantilesResult

__all__ = ["INTERCEPT", "Result", "Summary", "Table", "RegressionResult", "LogitResult", "TTestResult",
           "ConfidenceInterval", "Chi2Result", "MatrixResult", "DescribeResult", "MetaResult", "HistogramResult",
           "QuantilesResult", "plain", "format_value"]
