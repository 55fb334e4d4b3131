"""The README's walkthrough script, run as a user would: only `tessera` commands, four node
processes, the analyst's jobs (one of them denied)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.node.conftest import free_block

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "consortium" / "walkthrough.sh"


def test_walkthrough_script(tmp_path):
    env = {**os.environ, "BASE_PORT": str(free_block()), "ROWS": "3000"}
    run = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "w")], env=env, capture_output=True, text=True,
                         timeout=400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    # two results printed as JSON: the model's five coefficients and the meta-analysis
    blocks = [json.loads(m) for m in re.findall(r"^\{\n.*?^\}$", out, flags=re.S | re.M)]
    model, meta = blocks[0]["outputs"], blocks[1]["outputs"]
    assert len(model["coefficients"]) == 5 and all(isinstance(c, float) for c in model["coefficients"])
    assert model["n"] == 3000
    assert meta["studies"] == 3 and meta["fixed_se"] > 0
    assert re.search(r"job [0-9a-f]{16} was denied, as the contract says", out)
    assert "columns ['channel'] are not allowed" in out
    # the nodes were stopped when the script ended, cleanly
    for n in ("alpha", "beta", "gamma", "trusted_dealer"):
        log = (tmp_path / "w" / f"{n}.log").read_text()
        assert '"msg": "node stopped"' in log
