import os
import stat

import pytest

from tessera.errors import IdentityError
from tessera.net.identity import Identity, verify_signature


def test_create_load_sign_verify(tmp_path):
    ident = Identity.create("bank-a", tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / "bank-a.key").st_mode) == 0o600
    again = Identity.load(tmp_path, "bank-a")
    assert again.fingerprint == ident.fingerprint and ident.fingerprint.startswith("sha256:")
    sig = again.sign(b"contract")
    assert verify_signature(ident.public_key, sig, b"contract")
    assert not verify_signature(ident.public_key, sig, b"contract!")
    assert "PRIVATE" not in repr(ident)


def test_missing_unsafe_or_mismatched_files(tmp_path):
    with pytest.raises(IdentityError, match="missing identity file"):
        Identity.load(tmp_path, "nobody")
    Identity.create("a", tmp_path)
    os.chmod(tmp_path / "a.key", 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        Identity.load(tmp_path, "a")
    os.chmod(tmp_path / "a.key", 0o600)
    Identity.create("b", tmp_path)
    (tmp_path / "a.crt").write_bytes((tmp_path / "b.crt").read_bytes())
    with pytest.raises(IdentityError, match="does not belong"):
        Identity.load(tmp_path, "a")
    with pytest.raises(IdentityError, match="already exists"):
        Identity.create("b", tmp_path)
