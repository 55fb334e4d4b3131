"""Party identities: one Ed25519 key per party, with a self-signed X.509 certificate.

The same key authenticates TLS connections (the certificate is pinned by its SHA-256
fingerprint in the contract) and signs contracts and audit entries. Files, for party ``NAME``
in directory ``DIR``:

* ``DIR/NAME.key``  PKCS#8 PEM private key, written with mode 0600, never logged;
* ``DIR/NAME.crt``  PEM certificate; its fingerprint is ``sha256:<hex of the DER encoding>``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

from tessera.errors import IdentityError

__all__ = ["Identity", "fingerprint_of", "public_key_hex", "verify_signature", "write_private"]

_VALIDITY = dt.timedelta(days=3650)


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to a file only its owner may read (0600 from creation; an existing file,
    whatever its mode, is replaced)."""
    p = Path(path)
    if p.exists():
        p.unlink()
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def fingerprint_of(cert_der: bytes) -> str:
    """The pinned form of a certificate: ``sha256:`` and the hex digest of its DER bytes."""
    return "sha256:" + hashlib.sha256(cert_der).hexdigest()


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def verify_signature(public_key_hex_: str, signature: bytes, message: bytes) -> bool:
    """True if ``signature`` is a valid Ed25519 signature of ``message`` by the given key."""
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex_))
        key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Identity:
    """A party's signing key and certificate, loaded from or written to a directory."""

    name: str
    key_path: Path
    cert_path: Path
    _key: Ed25519PrivateKey
    cert: x509.Certificate

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.cert_der)

    @property
    def public_key(self) -> str:
        """The Ed25519 public key, hex encoded (as written in contracts)."""
        return public_key_hex(self._key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:  # never print key material
        return f"Identity(name={self.name!r}, fingerprint={self.fingerprint!r})"

    @classmethod
    def create(cls, name: str, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Identity:
        """Create a fresh key and self-signed certificate for party ``name`` in ``out_dir``."""
        if not name or any(c in name for c in "/\\\0") or name.startswith("."):
            raise IdentityError(f"invalid party name {name!r}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = out / f"{name}.key", out / f"{name}.crt"
        if not overwrite and (key_path.exists() or cert_path.exists()):
            raise IdentityError(f"an identity for {name!r} already exists in {out}; refusing to overwrite")
        key = Ed25519PrivateKey.generate()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, None)
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private(key_path, pem)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(name, key_path, cert_path, key, cert)

    @classmethod
    def load(cls, directory: str | os.PathLike[str], name: str) -> Identity:
        """Load party ``name``'s identity from ``directory``; refuses a key readable by others."""
        d = Path(directory)
        key_path, cert_path = d / f"{name}.key", d / f"{name}.crt"
        for p in (key_path, cert_path):
            if not p.is_file():
                raise IdentityError(f"missing identity file {p} (create it with `tessera keys new`)")
        mode = stat.S_IMODE(key_path.stat().st_mode)
        if mode & 0o077:
            raise IdentityError(f"private key {key_path} is accessible by others (mode {mode:o}); chmod 600 it")
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as e:
            raise IdentityError(f"cannot read identity of {name!r} in {d}: {type(e).__name__}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise IdentityError(f"{key_path} is not an Ed25519 private key")
        if public_key_hex(key.public_key()) != public_key_hex(cert.public_key()):  # type: ignore[arg-type]
            raise IdentityError(f"{cert_path} does not belong to the key in {key_path}")
        return cls(name, key_path, cert_path, key, cert)
