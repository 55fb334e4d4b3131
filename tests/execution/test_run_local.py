"""run_local with real party processes over mutual TLS (slow)."""

import numpy as np
import pandas as pd
import pytest

from tessera.data.synthetic import bank_transactions
from tessera.jobs.local import run_local

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_correlation_over_the_cluster(protocol):
    frames, schema, _ = bank_transactions(20_000, seed=5)
    pooled = pd.concat(frames.values())
    res = run_local("correlation", frames, schema, columns=["amount", "merchant_risk", "is_fraud"], protocol=protocol)
    ref = np.corrcoef(pooled[["amount", "merchant_risk", "is_fraud"]].astype(float).to_numpy().T)
    np.testing.assert_allclose(res["correlation"], ref, atol=1e-4)
    assert res.revealed == ["count -> all recipients", "correlation -> all recipients"]
    assert all(c["bytes_sent"] > 0 for c in res.comm.values())
