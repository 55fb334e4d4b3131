"""Outputs sealed to an analyst (#15, analyst-only results) through ``run_local``: the analyst's key
reconstructs what the normal path reveals, no party receives anything but what every party
learns anyway, and a wrong key, a missing, swapped or altered share is refused naming the party."""

from __future__ import annotations

import base64
import datetime as dt
import json

import nacl.public
import numpy as np
import pandas as pd
import pytest

from tessera.data.schema import Schema
from tessera.errors import PlanError, SealedResultError, SessionError
from tessera.governance.contract import Contract
from tessera.governance.job import JobSpec
from tessera.jobs.budget import OutputBarrier
from tessera.jobs.contract import roles_for
from tessera.jobs.local import ANALYST_NAME, run_local
from tessera.jobs.sealed import new_box_key, open_sealed
from tessera.mpc.session import SEALED
from tessera.runtime.inprocess import run_threads

KEY = new_box_key()
SCHEMA = Schema.model_validate({"columns": [{"name": "x", "type": "float", "min": -10, "max": 10},
                                            {"name": "y", "type": "float", "min": -50, "max": 50}]})


def frames(n: int = 3, rows: int = 150, seed: int = 3) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        x = rng.uniform(-10, 10, rows)
        out[f"p{i}"] = pd.DataFrame({"x": x, "y": 2 * x + 1 + rng.normal(0, 1, rows)})
    return out


def boxes(res) -> dict[str, str]:
    return {p: b[ANALYST_NAME] for p, b in res.sealed.items()}


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_sealed_describe_matches_the_normal_path(protocol: str) -> None:
    data = frames()
    pooled = pd.concat(data.values())
    normal = run_local("describe", data, SCHEMA, protocol=protocol, runtime="threads", columns=["x", "y"])
    sealed = run_local("describe", data, SCHEMA, protocol=protocol, runtime="threads", columns=["x", "y"],
                       analyst_key=KEY)
    assert sealed.outputs["count"] == normal.outputs["count"] == len(pooled)
    for c in ("x", "y"):
        for stat in ("sum", "mean", "var", "std"):
            np.testing.assert_allclose(sealed.outputs[c][stat], normal.outputs[c][stat], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(sealed.outputs[c]["var"], pooled[c].var(ddof=1), rtol=1e-9)
    # the parties saw the count (every party learns it) and nothing else; each sealed a box
    assert sealed.per_party == {p: {"count": len(pooled)} for p in data}
    assert set(sealed.sealed) == set(data)
    assert len({r.result.transcript for r in sealed.reports.values() if r.result}) == 1
    assert "outputs sealed to analyst" in sealed.plan_text


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_sealed_linear_regression_matches_the_normal_path(protocol: str) -> None:
    data = frames(seed=11)
    pooled = pd.concat(data.values())
    normal = run_local("linear_regression", data, SCHEMA, protocol=protocol, runtime="threads", features=["x"],
                       target="y")
    sealed = run_local("linear_regression", data, SCHEMA, protocol=protocol, runtime="threads", features=["x"],
                       target="y", analyst_key=KEY)
    for name in ("coefficients", "std_errors", "t"):
        np.testing.assert_allclose(sealed.outputs[name], normal.outputs[name], rtol=1e-4)
    np.testing.assert_allclose(sealed.outputs["r2"], normal.outputs["r2"], atol=1e-5)
    z = np.column_stack([np.ones(len(pooled)), pooled["x"]])
    ref = np.linalg.lstsq(z, pooled["y"].to_numpy(), rcond=None)[0]
    np.testing.assert_allclose(sealed.outputs["coefficients"], ref, rtol=1e-4)
    assert sealed.outputs["n"] == len(pooled)
    assert sealed.per_party == {p: {"n": len(pooled)} for p in data}


@pytest.mark.slow
def test_sealed_describe_over_party_processes() -> None:
    data = frames()
    sealed = run_local("describe", data, SCHEMA, protocol="rep3", columns=["x"], analyst_key=KEY)
    np.testing.assert_allclose(sealed.outputs["x"]["mean"], pd.concat(data.values())["x"].mean(), rtol=1e-9)
    assert sealed.per_party == {p: {"count": 450} for p in data}


def test_too_few_rows_reveal_nothing_and_the_analyst_gets_nan() -> None:
    data = frames(n=2, rows=1)  # 2 rows for 1 feature: no residual degrees of freedom
    sealed = run_local("linear_regression", data, SCHEMA, protocol="semi2k", runtime="threads", features=["x"],
                       target="y", analyst_key=KEY)
    assert sealed.outputs["n"] == 2 and np.isnan(sealed.outputs["coefficients"]).all()


def test_a_wrong_missing_swapped_or_altered_share_is_refused() -> None:
    res = run_local("describe", frames(), SCHEMA, protocol="rep3", runtime="threads", columns=["x"],
                    analyst_key=KEY)
    b = boxes(res)
    assert open_sealed(b, KEY)["count"] == 450
    with pytest.raises(SealedResultError, match=r"of party 'p\d' does not open with this key \(it was sealed to "):
        open_sealed(b, new_box_key())
    with pytest.raises(SealedResultError, match="'p2' are missing"):
        open_sealed({p: v for p, v in b.items() if p != "p2"}, KEY)
    with pytest.raises(SealedResultError, match="given for party 'p0' was sealed by party 'p1'"):
        open_sealed({**b, "p0": b["p1"]}, KEY)
    # an altered share (re-sealed to the same key, as anybody can): rep3's replicated components disagree
    plain = json.loads(nacl.public.SealedBox(KEY.private).decrypt(base64.b64decode(b["p1"])))
    words = np.frombuffer(base64.b64decode(plain["reveals"][0][0]["components"][0]), dtype="<u8").copy()
    words[0] += np.uint64(1)
    plain["reveals"][0][0]["components"][0] = base64.b64encode(words.tobytes()).decode()
    forged = base64.b64encode(nacl.public.SealedBox(KEY.private.public_key).encrypt(json.dumps(plain).encode()))
    with pytest.raises(SealedResultError, match="shares of 'p0' and 'p1' disagree"):
        open_sealed({**b, "p1": forged.decode()}, KEY)


def test_only_analyses_with_public_post_processing_seal() -> None:
    with pytest.raises(PlanError, match="ttest cannot seal its results to analysts yet.*correlation.*describe"):
        df = frames()
        groups = {p: d.assign(g=d.x > 0) for p, d in df.items()}
        schema = Schema.model_validate({"columns": [*SCHEMA.model_dump(mode="json")["columns"],
                                                    {"name": "g", "type": "bool"}]})
        run_local("ttest", groups, schema, protocol="rep3", runtime="threads", value="y", group="g", analyst_key=KEY)
    with pytest.raises(PlanError, match="no party recipients"):
        run_local("describe", frames(), SCHEMA, protocol="rep3", runtime="threads", columns=["x"],
                  analyst_key=KEY, recipients=["p0"])


def test_a_sealed_reveal_is_an_output_and_needs_sealing_on() -> None:
    marked: list[str] = []

    def program(session):
        with pytest.raises(SessionError, match="seals no outputs"):
            session.reveal(session.input(0, np.array([1.0]) if session.me == 0 else None, shape=(1,)), to=SEALED)
        store = session.seal_outputs()
        OutputBarrier(lambda: marked.append(session.party)).attach(session)
        t = session.input(0, np.array([1.5, -2.0]) if session.me == 0 else None, shape=(2,))
        got = session.reveal(t, to=SEALED)
        return got, [s.shares.shape for s in store[0]], session.transcript_hash()

    res = run_threads(program, 3, protocol="rep3")
    assert sorted(marked) == ["P0", "P1", "P2"]  # the output barrier ran: every owner marked "spent"
    for got, shapes, _ in res.results.values():
        assert got == [None] and shapes == [(2, 2)]  # nothing opened; each party kept its pair
    assert len({h for _, _, h in res.results.values()}) == 1


def _contract(box_key: str | None) -> Contract:
    now = dt.datetime.now(dt.UTC)
    parties = [{"name": n, "address": f"127.0.0.1:{9000 + i}", "fingerprint": "sha256:" + "0" * 64,
                "public_key": f"{i}" * 64} for i, n in enumerate(("alpha", "beta"))]
    schema = SCHEMA.model_dump(mode="json", exclude_none=True)
    return Contract.model_validate({
        "contract_id": "c", "not_before": now - dt.timedelta(days=1), "not_after": now + dt.timedelta(days=1),
        "parties": [*parties, {"name": "dealer", "address": "127.0.0.1:9009", "fingerprint": "sha256:" + "0" * 64,
                               "public_key": "9" * 64, "role": "dealer"}],
        "datasets": [{"name": f"d_{p['name']}", "owner": p["name"], "schema": schema} for p in parties],
        "analysts": [{"id": "ana", **({"box_key": box_key} if box_key else {})}, {"id": "bob"}],
    })


def test_roles_seal_only_to_analysts_who_all_have_a_box_key() -> None:
    def spec(recipients: list[str]) -> JobSpec:
        return JobSpec.model_validate({"analysis": "describe", "version": "1.0", "datasets": ["d_alpha", "d_beta"],
                                       "columns": ["x"], "params": {"columns": ["x"]}, "protocol": "semi2k",
                                       "recipients": recipients, "analyst": "ana"})

    keyed = _contract(KEY.public)
    r = roles_for(keyed, spec(["ana"]), "alpha").recipients
    assert (r.parties, r.analysts, r.sealed) == ([], ["ana"], {"ana": KEY.public})
    # an analyst without a key, or a party among the recipients: through the coordinator, as before
    for recipients in (["ana", "bob"], ["ana", "beta"]):
        r = roles_for(keyed, spec(recipients), "alpha").recipients
        assert r.sealed == {} and "alpha" in r.parties
    assert roles_for(_contract(None), spec(["ana"]), "alpha").recipients.parties == ["alpha"]
    with pytest.raises(ValueError, match="box_key"):
        Contract.model_validate({**_contract(None).model_dump(mode="json", by_alias=True, exclude_none=True),
                                 "analysts": [{"id": "ana", "box_key": "not hex"}]})


def _same(a, b) -> None:
    """Equal keys and labels; numbers equal to the ULPs a fresh run's truncations may differ by."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)) and a and isinstance(a[0], str):
        assert list(a) == list(b)
    elif isinstance(a, (list, tuple, np.ndarray)):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-6, atol=1e-7)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7) or (np.isnan(a) and np.isnan(b))
    else:
        assert a == b


@pytest.mark.parametrize("analysis, params", [
    ("covariance", {"columns": ["x", "y"]}),
    ("correlation", {"columns": ["x", "y"]}),
])
def test_sealed_matrices_match_the_normal_path(analysis: str, params: dict) -> None:
    data = frames()
    normal = run_local(analysis, data, SCHEMA, protocol="rep3", runtime="threads", **params)
    sealed = run_local(analysis, data, SCHEMA, protocol="rep3", runtime="threads", analyst_key=KEY, **params)
    _same(sealed.outputs, normal.outputs)
    assert sealed.per_party == {p: {"count": normal.outputs["count"]} for p in data}


def test_sealed_chi2_and_meta_analysis_match_the_normal_path() -> None:
    from tessera.data.synthetic import hospital_trials

    rng = np.random.default_rng(5)
    levels = ["u", "v", "w"]
    schema = Schema.model_validate({"columns": [{"name": "a", "type": "category", "levels": levels},
                                                {"name": "b", "type": "bool"}]})
    codes = rng.integers(0, 3, 900)
    df = pd.DataFrame({"a": pd.Categorical.from_codes(codes, categories=levels), "b": rng.random(900) < 0.2 + 0.2 * codes})
    parts = {"p0": df.iloc[:300], "p1": df.iloc[300:600], "p2": df.iloc[600:]}
    normal = run_local("chi2", parts, schema, protocol="semi2k", runtime="threads", row="a", column="b")
    sealed = run_local("chi2", parts, schema, protocol="semi2k", runtime="threads", row="a", column="b",
                       analyst_key=KEY)
    _same(sealed.outputs, normal.outputs)
    assert "chi2" not in sealed.per_party["p0"]
    trials, tschema, _ = hospital_trials(seed=12)
    kw = {"outcome": "outcome", "treatment": "treatment", "protocol": "rep3", "runtime": "threads"}
    normal = run_local("meta_analysis", trials, tschema, **kw)
    sealed = run_local("meta_analysis", trials, tschema, analyst_key=KEY, **kw)
    _same(sealed.outputs, normal.outputs)
    assert all(set(v) == {"studies"} for v in sealed.per_party.values())
