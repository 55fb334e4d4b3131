"""The layer order of docs/architecture.md holds, and the public surface is what we export."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_imports_point_downward_only():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is not installed (it is in the test extras)")
    proc = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "module", ["tessera", "tessera.errors", "tessera.analytics", "tessera.dp", "tessera.psi", "tessera.data", "tessera.mpc",
               "tessera.protocols", "tessera.runtime", "tessera.ring", "tessera.prg"]
)
def test_exported_members_exist(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is in __all__ but missing"


def test_no_pickle_anywhere():
    for path in (ROOT / "tessera").rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "cloudpickle" not in text, path


def test_jobs_are_not_run_by_a_program_name():
    """A job's party process runs one entry point from a typed job: nothing above the runtime
    chooses a party program by a string (only diagnostics and benchmarks do, via run_cluster)."""
    for pkg in ("jobs", "node", "execution", "governance"):
        for path in (ROOT / "tessera" / pkg).rglob("*.py"):
            text = path.read_text()
            assert "load_program" not in text and "tessera.runtime.party" not in text, path


def test_the_party_entry_point_does_not_plan():
    """The party process runs the job it is handed: the planner is not even imported there."""
    code = ("import sys; import tessera.jobs.party; "
            "print('tessera.jobs.planner' in sys.modules, 'tessera.jobs.contract' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"]


def test_import_has_no_side_effects():
    code = "import sys, threading; import tessera, tessera.mpc, tessera.runtime; print(threading.active_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
