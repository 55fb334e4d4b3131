"""#16.5: one progress mechanism. A party's session reports (fraction, stage) locally
(``Session.progress``, nested ``progress_span``); ``run_local(progress=...)`` passes the job's on
for threads and for party processes (which write it to their progress file); a node's job view
shows the real fraction while running. Monotone, and 1.0 only at release.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from tessera.cli.main import app
from tessera.data.synthetic import bank_transactions
from tessera.jobs.local import run_local
from tessera.mpc.session import Session
from tessera.node.runner import Runner
from tessera.node.states import FRACTION, JobState, running_fraction
from tessera.runtime.inprocess import run_threads


@pytest.fixture(scope="module")
def banks() -> tuple[Any, Any]:
    frames, schema, _ = bank_transactions(3000, seed=9)
    return frames, schema


def _program(session: Session) -> list[tuple[float, str]]:
    seen: list[tuple[float, str]] = []
    session.on_progress(lambda f, s: seen.append((round(f, 4), s)))
    session.progress(0.1, "loading")
    with session.progress_span(0.2, 0.8, "secure"):
        for i in range(3):
            session.progress(i / 3, f"step {i + 1} of 3")
        with session.progress_span(0.5, 1.0):
            session.progress(0.5, "inner")
        session.progress(0.1, "late text")  # below what was reached: the fraction stays
    session.progress(float("nan"), "")
    session.progress(1.0, "released")
    return seen


def test_a_sessions_progress_is_local_nested_and_monotone() -> None:
    res = run_threads(_program, 2, protocol="semi2k")
    seen = res.results["P0"]
    assert seen == [(0.1, "loading"), (0.2, "secure"), (0.2, "step 1 of 3"), (0.4, "step 2 of 3"),
                    (0.6, "step 3 of 3"), (0.6, "step 3 of 3"), (0.65, "inner"), (0.8, "inner"),
                    (0.8, "late text"), (0.8, "late text"), (0.8, "late text"), (1.0, "released")]
    assert res.results["P1"] == seen
    idle = run_threads(lambda s: None, 2, protocol="semi2k")  # the session's own set-up only
    assert res.comm["P0"] == idle.comm["P0"]  # nothing was sent for the progress reports


def _check_job_progress(seen: list[tuple[float, str]], iterations: int) -> None:
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions), seen  # never decreasing
    assert seen[-1] == (1.0, "released") and fractions.count(1.0) == 1, seen  # 1.0 once, at release
    assert all(0.0 <= f <= 1.0 for f in fractions)
    newton = [s for _, s in seen if s.startswith("Newton iteration")]
    assert newton and set(newton) <= {f"Newton iteration {i} of {iterations}" for i in range(1, iterations + 1)}
    assert all(s for _, s in seen), seen  # every report names its stage


def test_run_local_reports_the_jobs_progress_with_threads(banks: tuple[Any, Any]) -> None:
    frames, schema = banks
    seen: list[tuple[float, str]] = []
    run_local("logistic_regression", frames, schema, features=["amount", "merchant_risk"], target="is_fraud",
              runtime="threads", iterations=6, max_inverse=1e6, progress=lambda f, s: seen.append((f, s)))
    _check_job_progress(seen, 6)
    stages = [s for _, s in seen]
    for stage in ("loading and checking the data", "secure computation", "Newton iteration 1 of 6",
                  "Newton iteration 6 of 6", "releasing the outputs"):
        assert stage in stages, (stage, stages)


@pytest.mark.slow
def test_run_local_reports_the_jobs_progress_from_party_processes(banks: tuple[Any, Any]) -> None:
    """The processes write it to their progress files; run_local reads them as they go."""
    frames, schema = banks
    seen: list[tuple[float, str]] = []
    run_local("logistic_regression", frames, schema, features=["amount", "merchant_risk"], target="is_fraud",
              runtime="cluster", iterations=6, max_inverse=1e6, progress=lambda f, s: seen.append((f, s)))
    _check_job_progress(seen, 6)
    assert any(0.3 <= f < 0.95 for f, _ in seen), seen  # seen while it ran, not only at the end


def test_a_running_jobs_view_shows_the_party_processs_fraction(tmp_path: Path) -> None:
    """The node maps its party's fraction into the running state's part of the bar (never back
    below it, never 1.0 before the release) and names the stage in the detail."""
    ctx = SimpleNamespace(job_dir=lambda job_id: tmp_path)
    runner = Runner(ctx, lambda *a, **k: None, lambda: None)  # type: ignore[arg-type]
    base = {"phase": "running", "fraction": FRACTION[JobState.RUNNING], "detail": "secure computation"}
    assert runner.progress("j", base) == base  # nothing written yet
    (tmp_path / "progress.json").write_text(json.dumps({"rounds": 120, "bytes_sent": 2_500_000, "seconds": 3.2,
                                                        "fraction": 0.6, "stage": "Newton iteration 3 of 8"}))
    got = runner.progress("j", base)
    assert got["fraction"] == pytest.approx(0.5 + 0.49 * 0.6)
    assert got["stage"] == "Newton iteration 3 of 8"
    assert got["detail"] == "Newton iteration 3 of 8: 120 rounds, 2.5 MB sent, 3 s"
    assert running_fraction(0.0) == FRACTION[JobState.RUNNING] and running_fraction(1.0) == 0.99
    assert running_fraction(float("nan")) == FRACTION[JobState.RUNNING] and running_fraction(7.0) == 0.99
    (tmp_path / "progress.json").write_text('{"rounds": "many"')  # being replaced: the state's own
    assert runner.progress("j", base) == base


def test_tessera_run_shows_the_stages_on_stderr(tmp_path: Path, banks: tuple[Any, Any]) -> None:
    """``tessera run``: results on stdout; on a stream that is not a terminal, one progress line
    per stage on stderr, ending at 100% released."""
    frames, _ = banks
    args = []
    for name, frame in frames.items():
        frame.head(300).to_csv(tmp_path / f"{name}.csv", index=False)
        args += ["--party", f"{name}={tmp_path / f'{name}.csv'}"]
    (tmp_path / "s.toml").write_text('[[columns]]\nname = "amount"\ntype = "float"\nmin = 0\nmax = 10000\n')
    out = CliRunner().invoke(app, ["run", "describe", *args, "--schema", str(tmp_path / "s.toml"),
                                   "--param", "columns=amount", "--runtime", "threads"])
    assert out.exit_code == 0, out.output
    lines = out.stderr.splitlines()
    assert all(line.startswith("progress") for line in lines), lines
    assert any("loading and checking the data" in line for line in lines[:2]), lines
    assert lines[-1] == "progress  100%  released", lines
    assert "progress" not in out.stdout
