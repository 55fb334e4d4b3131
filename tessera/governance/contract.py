"""The collaboration contract: a versioned, signed agreement every node enforces on its own.

A contract names the parties (address, pinned TLS certificate fingerprint, Ed25519 public
key), their datasets (schema and row-count bounds), the analyses allowed (versions, datasets,
columns, parameter limits, protocols, recipients, differential-privacy requirements), the
analysts, the privacy budgets, the leakage rules, the validity period and revoked keys. It is
written as TOML. Every party signs the canonical encoding (sorted-key compact JSON of everything
but the signatures); the contract is in force only when every party's signature verifies, the
date is inside the validity period and no party key is revoked. Any change makes a new hash and
needs new signatures; rotating a key is such a change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tessera.data.schema import Schema
from tessera.errors import ContractError
from tessera.net.identity import Identity, verify_signature

__all__ = ["Contract", "PartySpec", "DatasetSpec", "AnalysisRule", "Analyst", "Budget", "Signature", "FORMAT_VERSION"]

FORMAT_VERSION: Literal[1] = 1


#: Leakage rules (``leakage`` in the TOML) whose values are checked here. ``psi_reveal`` (what a
#: vertical job's PSI may reveal: ``size``, the default, or ``intersection``; any other value
#: allows no PSI) is judged by policy; ``extremes``: whether a job may release a column's exact
#: min and max, single individuals' values (``none``, the default, or ``exact``); ``iterates``:
#: whether a hybrid GLM may reveal its Newton iterates to the data owners (``none``, the default,
#: or ``owners``).
_LEAKAGE_VALUES: dict[str, tuple[str, ...]] = {"extremes": ("none", "exact"), "iterates": ("none", "owners")}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartySpec(_Model):
    name: str = Field(min_length=1)
    address: str = Field(description="host:port of the party's MPC endpoint")
    fingerprint: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    public_key: str = Field(pattern=r"^[0-9a-f]{64}$", description="Ed25519 public key, hex")
    #: ``party`` (the default) and ``both``: owns data and computes; ``owner``: owns data and only
    #: inputs it (it secret-shares to the compute parties and leaves); ``compute``: computes on
    #: the owners' shares and owns no data; ``dealer``: semi2k's correlated randomness
    role: Literal["party", "dealer", "owner", "compute", "both"] = "party"
    api: str | None = Field(None, description="https://host:port of the party's node API")
    api_fingerprint: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$",
                                        description="pinned fingerprint of the node API's TLS certificate")


class DatasetSpec(_Model):
    name: str
    owner: str
    schema_: Schema = Field(alias="schema")
    #: identifier column that aligns rows across parties (vertical jobs, by PSI); never analysed
    key: str | None = None
    min_rows: int = Field(0, ge=0)
    max_rows: int = Field(10**9, gt=0)
    #: rows sharing a join-key value (after the PSI's normalisation), in a vertical job:
    #: ``refuse`` (unset: the default) fails the job naming the dataset and the number of
    #: duplicated keys; ``first`` uses the first row of each key and leaves the others out
    duplicate_keys: Literal["refuse", "first"] | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class AnalysisRule(_Model):
    name: str
    versions: str = Field(">=1.0", description="a version specifier such as '>=1.0,<2'")
    datasets: list[str]
    columns: list[str]
    protocols: list[str] = ["semi2k", "rep3"]
    #: semi2k's correlated randomness this rule allows: ``dealer`` (a dealer node), ``ot`` (the
    #: parties by oblivious transfer, no third machine); ``["ot"]`` requires dealer-free jobs.
    #: Unset: either.
    preprocessing: list[Literal["dealer", "ot"]] | None = None
    recipients: list[str] = Field(min_length=1)
    max_iterations: int | None = None
    min_rows_per_party: int = 0
    min_group_size: int = 0
    max_outputs: int | None = None
    require_dp: bool = False
    max_epsilon: float | None = None
    #: parameter values the contract fixes: a job must run with exactly these, e.g.
    #: ``params = { inference = false }`` (logistic regression without standard errors) or
    #: ``{ means = false }`` (a t-test without the group means): what a release may contain
    params: dict[str, bool | int | float | str] = Field(
        {}, description="parameter values a job must use exactly (e.g. inference = false)")


class Analyst(_Model):
    id: str
    name: str = ""
    public_key: str | None = None
    #: X25519 public key (hex) that this analyst's results are sealed to: a job whose recipients
    #: are all analysts with a box key reveals its outputs to no party, each party seals its
    #: shares to these keys (:mod:`tessera.jobs.sealed`). Signed with the contract, so a node
    #: cannot be made to seal to another key.
    box_key: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="X25519 public key, hex")


class Budget(_Model):
    dataset: str
    epsilon: float = Field(gt=0)
    delta: float = Field(0.0, ge=0, lt=1)


class Signature(_Model):
    party: str
    public_key: str
    signature: str


class Contract(_Model):
    format_version: Literal[1] = FORMAT_VERSION
    contract_id: str
    title: str = ""
    not_before: dt.datetime
    not_after: dt.datetime
    protocol_versions: list[int] = [1]
    parties: list[PartySpec] = Field(min_length=2)
    datasets: list[DatasetSpec] = []
    analyses: list[AnalysisRule] = []
    analysts: list[Analyst] = []
    budgets: list[Budget] = []
    leakage: dict[str, str] = {"psi_reveal": "size"}
    revoked_keys: list[str] = []
    signatures: list[Signature] = []

    @model_validator(mode="after")
    def _consistent(self) -> Contract:
        names = [p.name for p in self.parties]
        if len(set(names)) != len(names):
            raise ValueError("party names must be unique")
        for when in (self.not_before, self.not_after):
            if when.tzinfo is None:
                raise ValueError("validity dates need a time zone (e.g. 2026-01-01T00:00:00Z)")
        if self.not_after <= self.not_before:
            raise ValueError("not_after must be later than not_before")
        ds = {d.name for d in self.datasets}
        roles = {p.name: p.role for p in self.parties}
        for spec in self.datasets:
            if spec.owner not in names:
                raise ValueError(f"dataset {spec.name!r} is owned by unknown party {spec.owner!r}")
            if roles[spec.owner] in ("compute", "dealer"):
                raise ValueError(f"dataset {spec.name!r} is owned by {spec.owner!r}, whose role "
                                 f"{roles[spec.owner]!r} owns no data")
        for b in self.budgets:
            if b.dataset not in ds:
                raise ValueError(f"budget for unknown dataset {b.dataset!r}")
        for rule, allowed in _LEAKAGE_VALUES.items():
            if rule in self.leakage and self.leakage[rule] not in allowed:
                raise ValueError(f"leakage rule {rule} = {self.leakage[rule]!r}; use one of {', '.join(allowed)}")
        known_recipients = set(names) | {a.id for a in self.analysts}
        for r in self.analyses:
            for d in r.datasets:
                if d not in ds:
                    raise ValueError(f"analysis {r.name!r} names unknown dataset {d!r}")
            bad = [x for x in r.recipients if x not in known_recipients]
            if bad:
                raise ValueError(f"analysis {r.name!r} names unknown recipients {bad}")
        return self

    # -- lookups -----------------------------------------------------------------------------

    def party(self, name: str) -> PartySpec:
        for p in self.parties:
            if p.name == name:
                return p
        raise ContractError(f"no party {name!r} in contract {self.contract_id!r}")

    def preprocessing_for(self, protocol: str, requested: str | None = None) -> str:
        """Where a job's correlated randomness comes from under this contract: semi2k takes the
        requested source, else the dealer if the contract names one, else OT by the parties;
        other protocols need none."""
        if protocol != "semi2k":
            return "none"
        if requested is not None:
            return requested
        return "dealer" if any(p.role == "dealer" for p in self.parties) else "ot"
    def computes(self, name: str) -> bool:
        """Whether party ``name`` may compute in jobs (role ``party``, ``both`` or ``compute``)."""
        return any(p.name == name and p.role in ("party", "both", "compute") for p in self.parties)

    def dataset(self, name: str) -> DatasetSpec | None:
        return next((d for d in self.datasets if d.name == name), None)

    def analyst(self, analyst_id: str) -> Analyst | None:
        return next((a for a in self.analysts if a.id == analyst_id), None)

    def budget(self, dataset: str) -> Budget | None:
        return next((b for b in self.budgets if b.dataset == dataset), None)

    # -- canonical form, hash, signatures -----------------------------------------------------

    def canonical_bytes(self) -> bytes:
        """Sorted-key compact JSON of the contract without its signatures and unset optional
        fields (what parties sign)."""
        # unset optional fields are left out, so adding an optional field to the format does not
        # change the encoding (and the signatures) of contracts that do not use it
        body = self.model_dump(mode="json", by_alias=True, exclude={"signatures"}, exclude_none=True)
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()

    def signed_by(self, identity: Identity) -> Contract:
        """A copy with ``identity``'s signature added (replacing an earlier one of that party)."""
        spec = self.party(identity.name)
        if spec.public_key != identity.public_key:
            raise ContractError(
                f"the key of {identity.name!r} is not the one written in the contract; "
                "rotate keys by amending the contract first"
            )
        sig = Signature(party=identity.name, public_key=identity.public_key,
                        signature=identity.sign(self.canonical_bytes()).hex())
        others = [s for s in self.signatures if s.party != identity.name]
        return self.model_copy(update={"signatures": [*others, sig]})

    def problems(self, now: dt.datetime | None = None) -> list[str]:
        """Every reason the contract is not in force (empty: it is in force)."""
        now = now or dt.datetime.now(dt.UTC)
        out = []
        if now < self.not_before:
            out.append(f"the contract is not valid before {self.not_before.isoformat()}")
        if now > self.not_after:
            out.append(f"the contract expired on {self.not_after.isoformat()}")
        message = self.canonical_bytes()
        by_party = {s.party: s for s in self.signatures}
        for p in self.parties:
            if p.public_key in self.revoked_keys:
                out.append(f"the key of {p.name!r} is revoked")
            s = by_party.get(p.name)
            if s is None:
                out.append(f"missing signature of {p.name!r}")
            elif s.public_key != p.public_key:
                out.append(f"the signature of {p.name!r} was made with a key that is not in the contract")
            else:
                try:
                    ok = verify_signature(p.public_key, bytes.fromhex(s.signature), message)
                except ValueError:
                    ok = False
                if not ok:
                    out.append(f"the signature of {p.name!r} does not verify (the contract was changed after signing)")
        for s in self.signatures:
            if s.party not in {p.name for p in self.parties}:
                out.append(f"signature by {s.party!r}, who is not a party")
        return out

    def check_in_force(self, now: dt.datetime | None = None) -> None:
        """Raise ContractError listing every problem unless the contract is in force."""
        problems = self.problems(now)
        if problems:
            raise ContractError(f"contract {self.contract_id!r} is not in force: " + "; ".join(problems))

    # -- files -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Contract:
        """Read a contract from TOML; a clear ContractError for malformed files."""
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ContractError(f"no contract file {p}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ContractError(f"{p} is not valid TOML: {e}") from None
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ContractError(f"{p} is not a valid contract: {e.errors()[0]['msg']} at "
                                f"{'.'.join(str(x) for x in e.errors()[0]['loc'])}") from None

    def save(self, path: str | Path) -> None:
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        Path(path).write_text(tomli_w.dumps(data), encoding="utf-8")
