from typer.testing import CliRunner

from tessera.cli.main import app

runner = CliRunner()


def test_init_sign_by_every_party_verify_then_tamper(tmp_path):
    keys = tmp_path / "keys"
    for n in ("a", "b", "c"):
        assert runner.invoke(app, ["keys", "new", "--party", n, "--out", str(keys)]).exit_code == 0
    path = tmp_path / "contract.toml"
    res = runner.invoke(app, ["contract", "init", "--out", str(path), "--id", "demo",
                              *[a for i, n in enumerate("abc") for a in ("--party", f"{n}=127.0.0.1:{7000 + i}={keys}")],
                              "--analyst", "analyst-1"])
    assert res.exit_code == 0, res.output
    assert runner.invoke(app, ["contract", "verify", str(path)]).exit_code == 1
    for n in ("a", "b", "c"):
        assert runner.invoke(app, ["contract", "sign", str(path), "--identity-dir", str(keys), "--party", n]).exit_code == 0
    ok = runner.invoke(app, ["contract", "verify", str(path)])
    assert ok.exit_code == 0 and "in force" in ok.output
    shown = runner.invoke(app, ["contract", "show", str(path)])
    assert shown.exit_code == 0 and "in force" in shown.output
    path.write_text(path.read_text().replace('contract_id = "demo"', 'contract_id = "demo2"'))
    bad = runner.invoke(app, ["contract", "verify", str(path)])
    assert bad.exit_code == 1 and "does not verify" in bad.output
