"""TLS 1.3 contexts that trust exactly one pinned certificate, and the fingerprint check.

There is no certificate authority and no host name check. Trust comes from the fingerprints
(``sha256:<hex of the DER certificate>``) every party pins for every other:

* a *server* context is made per incoming connection, after the client announced which
  certificate it will present and that certificate's fingerprint was found to be the pinned
  one; the context trusts that certificate alone and requires the client to present it, so the
  handshake proves the client holds its key;
* the *client* context accepts whatever the server presents (the TLS 1.3 handshake still proves
  the server holds the key of that certificate), and the client then compares its fingerprint
  with the pinned one before it sends anything.

Both sides compare the certificate the handshake authenticated with the pin after the
handshake (:func:`pin_mismatch`), whichever way trust was established.
"""

from __future__ import annotations

import ssl

from tessera.errors import IdentityError
from tessera.net.identity import Identity, fingerprint_of

__all__ = ["client_context", "server_context", "pin_mismatch", "presented_fingerprint"]


def _base(purpose: int, identity: Identity) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    for path in (identity.cert_path, identity.key_path):
        if not path.is_file():
            raise IdentityError(f"identity file {path} of {identity.name!r} is missing")
    try:
        ctx.load_cert_chain(identity.cert_path, identity.key_path)
    except (ssl.SSLError, OSError) as e:
        raise IdentityError(
            f"cannot use the identity of {identity.name!r} ({identity.cert_path}, {identity.key_path}) "
            f"for TLS: {type(e).__name__}"
        ) from None
    return ctx


def client_context(identity: Identity) -> ssl.SSLContext:
    """The context this endpoint connects with: presents ``identity``; the caller pins the server."""
    ctx = _base(ssl.PROTOCOL_TLS_CLIENT, identity)
    ctx.check_hostname = False
    # chain validation is replaced by the caller's pin check; the handshake itself still verifies the
    # server's signature with the key of the certificate it presented
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def server_context(identity: Identity, peer_cert_der: bytes) -> ssl.SSLContext:
    """The context to accept one client with: it must present exactly ``peer_cert_der``."""
    ctx = _base(ssl.PROTOCOL_TLS_SERVER, identity)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=peer_cert_der)
    # the pinned self-signed leaf is the trust anchor itself (it is not a CA certificate)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    # no session tickets: no resumption is wanted, and no post-handshake message is then ever
    # processed while a receiver thread and a sender share the connection
    ctx.num_tickets = 0
    return ctx


def presented_fingerprint(sock: ssl.SSLSocket) -> str:
    """The fingerprint of the certificate the peer authenticated with in the handshake."""
    der = sock.getpeercert(binary_form=True)
    return fingerprint_of(der) if der else "no certificate"


def pin_mismatch(peer: str, pinned: str, presented: str) -> str | None:
    """Why ``peer`` must be refused (naming both fingerprints), or None if it presented the pin."""
    if presented == pinned:
        return None
    return f"{peer!r} presented certificate {presented}, but the fingerprint pinned for {peer!r} is {pinned}"
