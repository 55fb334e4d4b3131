"""The README's outsourced walkthrough (#17), run as a user would: ``examples/hospitals/walkthrough.sh``
with three hospitals (contract role ``owner``) and three compute nodes, each its own process; every
hospital's node is stopped once its shares are sent, and the printed result matches statsmodels
on the same synthetic data."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.node.conftest import free_block
from tests.node.test_outsourced_nodes import reference

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "hospitals" / "walkthrough.sh"
N = 3


def test_hospitals_walkthrough_script(tmp_path: Path) -> None:
    w = tmp_path / "w"
    env = {**os.environ, "BASE_PORT": str(free_block(10 * (N + 3))), "HOSPITALS": str(N)}
    run = subprocess.run(["bash", str(SCRIPT), str(w)], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"all {N} hospital nodes have sent their shares and stopped" in run.stdout
    [block] = [json.loads(m) for m in re.findall(r"^\{\n.*?^\}$", run.stdout, flags=re.S | re.M)]
    out = block["outputs"]
    ref = reference([pd.read_csv(w / "data" / f"trial_hospital_{i + 1:02d}.csv") for i in range(N)])
    assert out["studies"] == N
    assert out["random_effect"] == pytest.approx(ref.mean_effect_re, abs=1e-3)
    assert out["random_se"] == pytest.approx(ref.sd_eff_w_re, abs=1e-3)
    assert out["fixed_effect"] == pytest.approx(ref.mean_effect_fe, abs=1e-3)
    assert out["tau2"] == pytest.approx(ref.tau2, rel=1e-3, abs=1e-3)
    for i in range(N):  # every hospital's node had stopped cleanly before the result
        log = (w / f"hospital_{i + 1:02d}.log").read_text()
        assert '"msg": "node stopped"' in log
