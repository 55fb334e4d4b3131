"""Outputs sealed to analysts: no party of the job learns them, only the analysts' clients do.

When every recipient of a job is an analyst with a box key in the contract (an X25519 public key,
signed with the contract, so no node can be made to encrypt to another key), the job's
:class:`~tessera.jobs.model.Recipients` carry ``sealed`` and the analysis reveals its outputs to
:data:`~tessera.mpc.session.SEALED`: nothing is opened to any party. Instead

1. each party keeps its own shares of the tensors it would have opened (semi2k: its additive
   share ``x_i``; rep3: its pair ``(x_i, x_{i+1})``) and, after the job, :func:`seal_shares` puts
   them, with the public context the analyst needs (the job's analysis, parameters and plan,
   what every party returned in the clear such as the row count, the transcript hash), in a
   libsodium sealed box (``crypto_box_seal``, PyNaCl's :class:`~nacl.public.SealedBox`: X25519 +
   XSalsa20-Poly1305 with an ephemeral sender key) for each analyst's key;
2. the nodes store and pass on those boxes, which they cannot open (the coordinator collects
   every party's box for the analyst);
3. the analyst's client (:func:`open_sealed`) opens every party's box with its private key,
   checks that they belong to one job and agree, reconstructs each value (the sum of every
   party's first component mod 2^64 — for rep3 each other component is checked against the
   next party's first), decodes it, and applies the analysis's public post-processing
   (:meth:`~tessera.analytics.base.Analysis.finish`, Tessera's own library code).

An analyst reconstructing a value learns exactly what a party opening it learns (all of its
shares); the parties learn nothing about it. Only analyses implementing ``finish`` can seal.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import nacl.exceptions
import nacl.public
import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from tessera import analytics
from tessera.errors import SealedResultError
from tessera.execution.steps import parse_params, plan_from_dict
from tessera.jobs.model import PartyJob
from tessera.mpc.session import SealedShares
from tessera.ring.fixedpoint import decode
from tessera.runtime import jsonable

__all__ = ["BoxKey", "new_box_key", "box_key", "seal_shares", "open_sealed", "SharePackage", "FORMAT"]

#: the format of a sealed box's plaintext
FORMAT: Literal["tessera-sealed-shares/v1"] = "tessera-sealed-shares/v1"


@dataclass(frozen=True)
class BoxKey:
    """An analyst's X25519 key pair for sealed results: ``public`` (hex) goes into the contract's
    analyst entry (``box_key``); ``private`` stays with the analyst."""

    private: nacl.public.PrivateKey

    @property
    def public(self) -> str:
        return bytes(self.private.public_key).hex()

    @property
    def private_hex(self) -> str:
        return bytes(self.private).hex()


def new_box_key() -> BoxKey:
    """A fresh X25519 key pair for an analyst."""
    return BoxKey(nacl.public.PrivateKey.generate())


def box_key(key: BoxKey | nacl.public.PrivateKey | str | bytes) -> BoxKey:
    """An analyst's private key given as a :class:`BoxKey`, a PyNaCl key, 32 bytes or 64 hex digits."""
    if isinstance(key, BoxKey):
        return key
    if isinstance(key, nacl.public.PrivateKey):
        return BoxKey(key)
    try:
        raw = bytes.fromhex(key.strip()) if isinstance(key, str) else bytes(key)
        return BoxKey(nacl.public.PrivateKey(raw))
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise SealedResultError("a box key is 32 bytes (64 hex digits) of an X25519 private key") from None


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SealedTensor(_Record):
    """One party's shares of one tensor: shape, encoding, and each share component (base64 of
    little-endian uint64 words)."""

    shape: list[int]
    frac_bits: int
    components: list[str]


class SharePackage(_Record):
    """What one sealed box holds: one party's output shares and the job's public context."""

    format: Literal["tessera-sealed-shares/v1"] = FORMAT
    job_id: str
    analyst: str
    party: str
    parties: list[str]
    protocol: str
    analysis: str
    version: str
    params: dict[str, Any]
    plan: dict[str, Any]
    #: what every party's secure stage returned in the clear (e.g. the row count), as plain JSON
    public: Any
    transcript: str
    #: the tensors of each reveal to the analysts, in order
    reveals: list[list[SealedTensor]]


def seal_shares(job: PartyJob, party: str, public: Mapping[str, Any], reveals: list[list[SealedShares]],
                transcript: str, analyst: str) -> str:
    """``party``'s shares of the job's ``reveals`` to its analysts, with the public context,
    sealed to ``analyst``'s key (from the job, i.e. from the contract); base64 text. Reveals
    nothing to whoever holds the box without that analyst's private key."""
    key = job.roles.recipients.sealed[analyst]
    package = SharePackage(
        job_id=job.job_id, analyst=analyst, party=party, parties=list(job.roles.compute), protocol=job.protocol,
        analysis=job.analysis, version=job.version, params=dict(job.params), plan=dict(job.plan),
        public=jsonable.to_plain(dict(public)), transcript=transcript,
        reveals=[[SealedTensor(shape=list(s.shape), frac_bits=s.frac_bits,
                               components=[base64.b64encode(np.ascontiguousarray(c, dtype="<u8").tobytes()).decode()
                                           for c in s.shares])
                  for s in reveal] for reveal in reveals])
    box = nacl.public.SealedBox(nacl.public.PublicKey(bytes.fromhex(key)))
    return base64.b64encode(box.encrypt(package.model_dump_json().encode())).decode()


def _unseal(party: str, blob: str, key: BoxKey) -> SharePackage:
    try:
        plain = nacl.public.SealedBox(key.private).decrypt(base64.b64decode(blob, validate=True))
    except (nacl.exceptions.CryptoError, binascii.Error, ValueError, TypeError):
        raise SealedResultError(f"the sealed share of party {party!r} does not open with this key (it was sealed to "
                                "another analyst's key, or altered)") from None
    try:
        package = SharePackage.model_validate_json(plain)
    except ValidationError:
        raise SealedResultError(f"the sealed share of party {party!r} is not a share package of this format") from None
    if package.party != party:
        raise SealedResultError(f"the sealed share given for party {party!r} was sealed by party {package.party!r}")
    return package


def _components(party: str, t: SealedTensor) -> np.ndarray:
    size = int(np.prod(t.shape, dtype=np.int64))
    try:
        parts = [np.frombuffer(base64.b64decode(c, validate=True), dtype="<u8") for c in t.components]
    except (binascii.Error, ValueError):
        raise SealedResultError(f"party {party!r}'s sealed shares are not well-formed") from None
    if not parts or any(p.size != size for p in parts):
        raise SealedResultError(f"party {party!r}'s sealed shares do not have their declared shape {t.shape}")
    return np.stack([p.astype(np.uint64).reshape(t.shape) for p in parts])


_SHARED = ("job_id", "analyst", "parties", "protocol", "analysis", "version", "params", "plan", "public",
           "transcript")


def open_sealed(boxes: Mapping[str, str], key: BoxKey | nacl.public.PrivateKey | str | bytes) -> dict[str, Any]:
    """The outputs of a job sealed to an analyst, from every party's box (party -> box) and the
    analyst's private key: opened, checked to agree, reconstructed, decoded and post-processed
    by the analysis (:meth:`~tessera.analytics.base.Analysis.finish`). Raises
    :class:`~tessera.errors.SealedResultError` naming the party whose box does not open, is
    missing, or disagrees with the others."""
    k = box_key(key)
    if not boxes:
        raise SealedResultError("no sealed shares were given")
    packages = {p: _unseal(p, blob, k) for p, blob in boxes.items()}
    first = next(iter(packages.values()))
    for p, pk in packages.items():
        for name in _SHARED:
            if getattr(pk, name) != getattr(first, name):
                raise SealedResultError(f"the sealed shares of parties {first.party!r} and {p!r} disagree on the "
                                        f"job's {name}: they are not one job's outputs")
    parties = list(first.parties)
    missing = [p for p in parties if p not in packages]
    if missing:
        raise SealedResultError(f"the sealed shares of {', '.join(map(repr, missing))} are missing; every party's "
                                "share is needed to reconstruct the outputs")
    stray = [p for p in packages if p not in parties]
    if stray:
        raise SealedResultError(f"sealed shares from {stray}, who are not parties of job {first.job_id}")
    layout = [[(t.shape, t.frac_bits) for t in r] for r in first.reveals]
    for p, pk in packages.items():
        if [[(t.shape, t.frac_bits) for t in r] for r in pk.reveals] != layout:
            raise SealedResultError(f"party {p!r} sealed other tensors than party {first.party!r}")
    opened: list[Any] = []
    n = len(parties)
    for i, reveal in enumerate(first.reveals):
        for j, t in enumerate(reveal):
            comps = [_components(p, packages[p].reveals[i][j]) for p in parties]
            if comps[0].shape[0] == 2:  # replicated: party q's second component is party q+1's first
                for q in range(n):
                    if not np.array_equal(comps[q][1], comps[(q + 1) % n][0]):
                        raise SealedResultError(f"the sealed shares of {parties[q]!r} and {parties[(q + 1) % n]!r} "
                                                "disagree (a share was altered)")
            total = np.zeros(t.shape, dtype=np.uint64)
            for c in comps:
                total += c[0]
            opened.append(decode(total, t.frac_bits))
    analysis = analytics.get(first.analysis, first.version)
    params = parse_params(analysis, first.params)
    public = dict(jsonable.from_plain(first.public))
    finished = analysis.finish(params, plan_from_dict(first.plan), public, opened if first.reveals else None)
    return {**public, **finished}
