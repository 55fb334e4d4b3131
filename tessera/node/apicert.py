"""The TLS certificate of a node's HTTPS API (ECDSA P-256, self-signed, pinned by fingerprint).

The node's Ed25519 identity certificate secures the MPC links and signs messages; browsers do
not accept Ed25519 server certificates, so the API (which serves the dashboard) has its own
P-256 certificate, whose fingerprint the contract pins next to the API address.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tessera.net.identity import fingerprint_of, write_private

__all__ = ["create_api_certificate", "api_fingerprint", "api_paths"]


def api_paths(directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    d = Path(directory)
    return d / f"{name}.api.key", d / f"{name}.api.crt"


def create_api_certificate(directory: str | os.PathLike[str], name: str, hosts: list[str]) -> str:
    """Write a fresh key (0600) and certificate for ``hosts``; returns the certificate's fingerprint."""
    key_path, cert_path = api_paths(directory, name)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} node API")])
    alt: list[x509.GeneralName] = [x509.DNSName(name), x509.DNSName("localhost")]
    for h in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            alt.append(x509.DNSName(h))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_private(key_path, pem)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return fingerprint_of(cert.public_bytes(serialization.Encoding.DER))


def api_fingerprint(directory: str | os.PathLike[str], name: str) -> str:
    _, cert_path = api_paths(directory, name)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return fingerprint_of(cert.public_bytes(serialization.Encoding.DER))
