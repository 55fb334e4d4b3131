"""Plots render to non-empty files (Agg backend); a missing matplotlib is one clear TesseraError."""

import builtins

import matplotlib
import numpy as np
import pytest

from tessera import plots
from tessera.analytics import results
from tessera.cli.main import app
from tessera.errors import TesseraError

matplotlib.use("Agg")

META = {"studies": 4, "q": 9.1, "i2": 0.67, "tau2": 0.02, "q_p_value": 0.03, "fixed_effect": 0.41, "fixed_se": 0.05,
        "fixed_ci": (0.31, 0.51), "fixed_p_value": 1e-12, "random_effect": 0.44, "random_se": 0.09,
        "random_ci": (0.26, 0.62), "random_p_value": 1e-6}
LOGIT = {"n": 900, "coefficients": np.array([-2.0, 0.8, -0.3, 1.2]), "std_errors": np.array([0.3, 0.1, 0.2, 0.4])}


def _written(path):
    assert path.exists() and path.stat().st_size > 1000
    return path


def test_result_plots_write_png_and_svg(tmp_path):
    meta = results.MetaResult("meta_analysis", "1.0", META, {"outcome": "recovery", "treatment": "drug",
                                                             "confidence": 0.95})
    _written(plots.save(meta.plot(), tmp_path / "forest.png"))
    logit = results.LogitResult("logistic_regression", "1.0", LOGIT,
                                {"features": ["a", "b", "c"], "target": "y", "iterations": 8})
    ax = logit.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]  # the intercept left out
    _written(plots.save(ax, tmp_path / "coef.svg"))
    hist = results.HistogramResult("histogram", "1.0", {"edges": [0, 1, 2, 3], "counts": [5, None, 7],
                                                        "suppressed": [False, True, False]}, {"column": "x"})
    _written(plots.save(hist.plot(), tmp_path / "hist.png"))


def test_roc_from_a_partys_own_rows(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    ax = plots.roc(y.astype(float), y + rng.normal(size=300))
    assert ax.get_legend().get_texts()[0].get_text().startswith("AUC = 0.7")
    _written(plots.save(ax, tmp_path / "roc.png"))
    with pytest.raises(plots.PlotError, match="needs rows of both classes"):
        plots.roc(np.zeros(5), np.arange(5.0))


def test_no_plot_or_a_bad_file_name_is_one_clear_error(tmp_path):
    res = results.TTestResult("ttest", "1.0", {"t": 1.0}, {})
    with pytest.raises(plots.PlotError, match="ttest results have no plot"):
        res.plot()
    ax = results.HistogramResult("histogram", "1.0", {"edges": [0, 1], "counts": [1]}, {}).plot()
    with pytest.raises(plots.PlotError, match=r"as \.png or \.svg, not 'x\.jpg'"):
        plots.save(ax, tmp_path / "x.jpg")


def test_without_matplotlib_the_error_says_how_to_install(monkeypatch):
    real = builtins.__import__

    def no_matplotlib(name, *args, **kw):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(TesseraError, match=r"pip install tessera\[plots\]"):
        plots.bars([0, 1], [3])


def test_cli_run_writes_the_plot(tmp_path):
    from typer.testing import CliRunner

    (tmp_path / "s.toml").write_text('[[columns]]\nname = "hour"\ntype = "int"\nmin = 0\nmax = 23\n')
    args = ["run", "histogram", "--schema", str(tmp_path / "s.toml"), "--param", "column=hour",
            "--param", "edges=0,12,24", "--runtime", "threads", "--plot", str(tmp_path / "h.png")]
    for name, rows in (("a", "1\n2\n13\n"), ("b", "4\n20\n23\n")):
        (tmp_path / f"{name}.csv").write_text("hour\n" + rows)
        args += ["--party", f"{name}={tmp_path / f'{name}.csv'}"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "count" in out.output and "plot written to" in out.output
    _written(tmp_path / "h.png")
