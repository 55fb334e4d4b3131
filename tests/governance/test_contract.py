import datetime as dt

import pytest

from tessera.errors import ContractError
from tessera.governance.contract import Contract, Signature
from tessera.net.identity import Identity
from tests.governance.conftest import make_contract, sign_all


def test_signed_contract_round_trips_through_toml_and_is_in_force(signed, tmp_path):
    signed.check_in_force()
    path = tmp_path / "c.toml"
    signed.save(path)
    again = Contract.load(path)
    assert again.hash == signed.hash and again.problems() == []


def test_one_changed_byte_breaks_every_signature(signed, tmp_path):
    path = tmp_path / "c.toml"
    signed.save(path)
    text = path.read_text()
    tampered = text.replace("10000000", "10000001", 1)
    assert tampered != text
    path.write_text(tampered)
    problems = Contract.load(path).problems()
    assert len(problems) == 3 and all("does not verify" in p for p in problems)


def test_malformed_file_is_a_clear_error(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("contract_id = ")
    with pytest.raises(ContractError, match="not valid TOML"):
        Contract.load(path)
    path.write_text('contract_id = "x"\n')
    with pytest.raises(ContractError, match="not a valid contract"):
        Contract.load(path)


def test_missing_signature_expired_and_not_yet_valid(identities):
    c = make_contract(identities)
    partial = c.signed_by(identities["bank_a"]).signed_by(identities["bank_b"])
    assert partial.problems() == ["missing signature of 'bank_c'"]
    now = dt.datetime.now(dt.UTC)
    old = sign_all(make_contract(identities, not_before=now - dt.timedelta(days=9), not_after=now - dt.timedelta(days=1)),
                   identities)
    with pytest.raises(ContractError, match="expired"):
        old.check_in_force()
    future = sign_all(make_contract(identities, not_before=now + dt.timedelta(days=1)), identities)
    assert any("not valid before" in p for p in future.problems())


def test_wrong_key_and_revoked_key(identities, tmp_path):
    c = make_contract(identities)
    impostor = Identity.create("bank_c", tmp_path / "other")
    with pytest.raises(ContractError, match="not the one written in the contract"):
        c.signed_by(impostor)
    forged = c.signed_by(identities["bank_a"]).signed_by(identities["bank_b"])
    bad = Signature(party="bank_c", public_key=impostor.public_key, signature=impostor.sign(c.canonical_bytes()).hex())
    forged = forged.model_copy(update={"signatures": [*forged.signatures, bad]})
    assert any("key that is not in the contract" in p for p in forged.problems())
    revoked = sign_all(make_contract(identities, revoked_keys=[identities["bank_b"].public_key]), identities)
    assert revoked.problems() == ["the key of 'bank_b' is revoked"]


def test_key_rotation_is_a_new_contract_that_needs_new_signatures(signed, identities, tmp_path):
    new_b = Identity.create("bank_b", tmp_path / "rotated")
    parties = [p.model_copy(update={"public_key": new_b.public_key, "fingerprint": new_b.fingerprint})
               if p.name == "bank_b" else p for p in signed.parties]
    rotated = signed.model_copy(update={"parties": parties, "revoked_keys": [identities["bank_b"].public_key]})
    assert rotated.hash != signed.hash and len(rotated.problems()) == 3
    resigned = rotated.signed_by(identities["bank_a"]).signed_by(new_b).signed_by(identities["bank_c"])
    assert resigned.problems() == []
    with pytest.raises(ContractError):
        rotated.signed_by(identities["bank_b"])  # the old key no longer signs
