"""Talking to other nodes and to node APIs: signed envelopes over HTTPS with pinned certificates.

Every message between nodes is an *envelope*: sender, recipient, kind, time, a fresh nonce and
a body, signed with the sender's Ed25519 key from the contract. The receiver accepts it only if
the sender is a party of the contract, the signature verifies, the envelope names the receiver
as its recipient (one sent to another node is refused), the time is a finite number within
:data:`MAX_SKEW` seconds of its own clock and the nonce was not seen before (no replay; a node
keeps the nonces it saw in its state directory, :mod:`tessera.node.replay`, so a restart does
not forget them). Replies are envelopes too, addressed to the asker, so a node knows the answer
came from the peer it asked and was meant for it.

:class:`PinnedHTTPS` is the one HTTPS client of Tessera (used by nodes and analysts alike):
it connects, compares the SHA-256 fingerprint of the certificate the server presented with the
pinned one (from the contract), and only then sends the request; no certificate authority or
host name is involved.
"""

from __future__ import annotations

import http.client
import json
import math
import secrets
import ssl
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from tessera.errors import PeerAuthError, TransportError
from tessera.governance.contract import Contract
from tessera.net.identity import Identity, fingerprint_of, verify_signature

__all__ = ["PEER_KINDS", "seal", "unseal", "ReplayGuard", "PinnedHTTPS", "HTTPError", "MAX_SKEW"]

MAX_SKEW = 120.0


#: The kinds of signed peer messages a node answers (``/v1/peer/{kind}``); the coordinator
#: handles exactly these.
PEER_KINDS = ("propose", "decision", "prepare", "start", "outcome", "query", "cancel", "statement")


class HTTPError(TransportError):
    """A node answered with an error status; ``status`` and the node's message are kept."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_FIELDS = ("from", "to", "kind", "ts", "nonce", "contract", "body")


def seal(identity: Identity, kind: str, body: dict[str, Any], contract_hash: str, *, to: str) -> dict[str, Any]:
    """An envelope of ``body`` from ``identity`` to the party ``to``, signed by ``identity`` and
    bound to the contract by its hash. Reveals the body to whoever carries it (it is not
    encrypted); the TLS connection to the recipient's pinned API keeps it from others."""
    env = {"from": identity.name, "to": to, "kind": kind, "ts": time.time(), "nonce": secrets.token_hex(16),
           "contract": contract_hash, "body": body}
    return {**env, "sig": identity.sign(_canonical(env)).hex()}


def _finite_time(ts: Any) -> bool:
    return isinstance(ts, (int, float)) and not isinstance(ts, bool) and math.isfinite(ts)


class ReplayGuard:
    """Nonces seen within the last :data:`MAX_SKEW` seconds (older envelopes are refused anyway),
    in memory: forgotten when the process ends (a node uses :class:`tessera.node.replay.SqliteReplayGuard`)."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def fresh(self, nonce: str, ts: float) -> bool:
        with self._lock:
            now = time.time()
            while self._seen and next(iter(self._seen.values())) < now - 2 * MAX_SKEW:
                self._seen.popitem(last=False)
            if nonce in self._seen:
                return False
            self._seen[nonce] = now
            return True


def unseal(contract: Contract, env: Any, kind: str, guard: ReplayGuard | None = None, *,
           me: str) -> tuple[str, dict[str, Any]]:
    """Check an envelope addressed to party ``me``; returns (sender, body) or raises
    PeerAuthError naming the problem (never quoting the body)."""
    if not isinstance(env, dict) or not {*_FIELDS, "sig"} <= set(env):
        raise PeerAuthError("not a signed node message (it needs from, to, kind, ts, nonce, contract, body, sig)")
    sender = env["from"]
    party = next((p for p in contract.parties if p.name == sender), None)
    if party is None:
        raise PeerAuthError(f"{str(sender)[:64]!r} is not a party of contract {contract.contract_id!r}")
    if party.public_key in contract.revoked_keys:
        raise PeerAuthError(f"the key of {sender!r} is revoked")
    body = {k: env[k] for k in _FIELDS}
    try:
        ok = verify_signature(party.public_key, bytes.fromhex(str(env["sig"])), _canonical(body))
    except ValueError:
        ok = False
    if not ok:
        raise PeerAuthError(f"the message from {sender!r} is not signed with its contract key")
    if env["to"] != me:
        raise PeerAuthError(f"the message from {sender!r} is addressed to {str(env['to'])[:64]!r}, not to {me!r}")
    if env["contract"] != contract.hash:
        raise PeerAuthError(f"{sender!r} speaks under another contract version ({str(env['contract'])[:12]}...)")
    if env["kind"] != kind:
        raise PeerAuthError(f"expected a {kind!r} message from {sender!r}, got {str(env['kind'])[:64]!r}")
    ts = env["ts"]
    if not _finite_time(ts):
        raise PeerAuthError(f"the message from {sender!r} has no valid time (ts must be a finite number of seconds)")
    if abs(time.time() - ts) > MAX_SKEW:
        raise PeerAuthError(f"the message from {sender!r} is stale or from the future (clock skew?)")
    if not isinstance(env["nonce"], str) or not env["nonce"]:
        raise PeerAuthError(f"the message from {sender!r} has no nonce")
    if guard is not None and not guard.fresh(env["nonce"], float(ts)):
        raise PeerAuthError(f"replayed message from {sender!r}")
    if not isinstance(env["body"], dict):
        raise PeerAuthError(f"the message from {sender!r} has no body")
    return sender, env["body"]


class PinnedHTTPS:
    """A minimal HTTPS JSON client that talks only to the server holding the pinned certificate."""

    def __init__(self, base_url: str, fingerprint: str, token: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"node URL must be https://host:port, got {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 443
        self.base_url = base_url.rstrip("/")
        self.fingerprint = fingerprint
        self.token = token
        self.timeout = timeout
        self._ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._ctx.check_hostname = False
        self._ctx.verify_mode = ssl.CERT_NONE  # trust comes from the pinned fingerprint, checked below
        self._ctx.minimum_version = ssl.TLSVersion.TLSv1_2

    def request(self, method: str, path: str, body: Any = None, timeout: float | None = None,
                text: bool = False, accept: tuple[int, ...] = ()) -> Any:
        """Send a JSON request; returns the decoded JSON reply (or, with ``text``, the reply as
        text) or raises HTTPError/TransportError. Error statuses in ``accept`` return their body."""
        conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout or self.timeout, context=self._ctx)
        try:
            try:
                conn.connect()
            except OSError as e:
                raise TransportError(f"cannot reach {self.base_url}: {e.strerror or type(e).__name__}") from None
            der = conn.sock.getpeercert(binary_form=True)
            got = fingerprint_of(der) if der else "none"
            if got != self.fingerprint:
                raise PeerAuthError(f"{self.base_url} presented certificate {got}, not the pinned {self.fingerprint}")
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise TransportError(f"{method} {self.base_url}{path} failed: {type(e).__name__}: {e}") from None
            if text and resp.status < 400:
                return raw.decode("utf-8", errors="replace")
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = {"detail": raw[:200].decode(errors="replace")}
            if resp.status >= 400 and resp.status not in accept:
                detail = payload.get("detail") if isinstance(payload, dict) else payload
                raise HTTPError(resp.status, str(detail))
            return payload
        finally:
            conn.close()
