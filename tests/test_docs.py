"""The documentation: the mkdocs site (API reference from the docstrings) builds with warnings as
errors, and each tutorial under docs/tutorials/ runs and prints what its "Expected output" block
says (numbers within 1%, or one unit of their last printed digit; whole numbers exactly)."""

import contextlib
import io
import math
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "docs" / "tutorials").glob("*.py"))
_NUMBER = re.compile(r"(-?\d+(?:\.\d+)?(?:e[-+]?\d+)?)")


def expected_output(path: Path) -> list[str]:
    """The lines of the tutorial's ``Expected output`` block (a fenced text block in comments)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("# ## Expected output")
    fence = lines.index("# ```text", start)
    end = lines.index("# ```", fence + 1)
    return [ln[2:] if ln.startswith("# ") else ln[1:] for ln in lines[fence + 1:end]]


def _close(got: str, want: str) -> bool:
    g, w = float(got), float(want)
    if "." not in want and "e" not in want:
        return g == w
    decimals = len(want.split(".")[1].split("e")[0]) if "." in want else 0
    return math.isclose(g, w, rel_tol=1e-2, abs_tol=10.0**-decimals * 1.000001)


def mismatch(got: str, want: str) -> str | None:
    """Why the printed line ``got`` differs from the reference line ``want``, or None."""
    g, w = _NUMBER.split(got), _NUMBER.split(want)
    if len(g) != len(w):
        return "different text"
    for i, (a, b) in enumerate(zip(g, w)):
        if i % 2 == 0 and " ".join(a.split()) != " ".join(b.split()):
            return f"text {a!r} instead of {b!r}"
        if i % 2 == 1 and not _close(a, b):
            return f"{a} instead of {b}"
    return None


def test_the_comparison_tolerates_rounding_noise_but_not_other_numbers_or_words():
    assert mismatch("coef  -1.291  n 4000", "coef -1.290 n 4000") is None
    assert mismatch("coef -1.31 n 4000", "coef -1.290 n 4000") == "-1.31 instead of -1.290"
    assert mismatch("coef -1.290 n 4001", "coef -1.290 n 4000") == "4001 instead of 4000"
    assert mismatch("coeff -1.290", "coef -1.290") == "text 'coeff ' instead of 'coef '"


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_the_tutorial_runs_and_prints_its_expected_output(path: Path) -> None:
    want = expected_output(path)
    assert want, f"{path.name} has an empty Expected output block"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(str(path), run_name="__main__")
    got = out.getvalue().splitlines()
    problems = [f"line {i + 1}: {why}\n  got:  {g}\n  want: {w}"
                for i, (g, w) in enumerate(zip(got, want)) if (why := mismatch(g, w)) is not None]
    assert len(got) == len(want) and not problems, "\n".join(problems) or f"{len(got)} lines, expected {len(want)}"


def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "WARNING" not in run.stderr, run.stderr[-3000:]
    page = (site / "reference" / "data" / "index.html").read_text(encoding="utf-8")
    assert 'id="tessera.data.draft.draft_schema"' in page and "widened outward" in page
    assert ":func:<code>" not in page  # the hook renders Sphinx roles as code
    jobs = (site / "reference" / "jobs" / "index.html").read_text(encoding="utf-8")
    assert 'id="tessera.jobs.local.run_local"' in jobs
