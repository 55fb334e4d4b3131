"""A job: what an analyst asks the nodes to compute (checked by every node's policy)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["JobSpec", "DPRequest"]


class DPRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: float = Field(gt=0)
    delta: float = Field(0.0, ge=0, lt=1)


class JobSpec(BaseModel):
    """Analysis by name and version, on named datasets and columns, with parameters."""

    model_config = ConfigDict(extra="forbid")

    analysis: str
    version: str
    datasets: list[str] = Field(min_length=1)
    columns: list[str] = Field(min_length=1)
    params: dict[str, Any] = {}
    protocol: str = "rep3"
    #: semi2k's correlated randomness: ``dealer`` or ``ot`` (unset: the contract's dealer if it
    #: names one, else ``ot``; see :meth:`Contract.preprocessing_for`)
    preprocessing: Literal["dealer", "ot"] | None = None
    partition: Literal["horizontal", "vertical"] = "horizontal"
    #: vertical jobs: the identifier column the parties' rows are aligned on (by PSI)
    join_key: str | None = None
    recipients: list[str] = Field(min_length=1)
    dp: DPRequest | None = None
    analyst: str
    idempotency_key: str | None = None
    #: the compute parties (in session order); unset: every data owner computes, unless some data
    #: owner's contract role is ``owner`` (it only inputs): then the contract's ``compute`` and
    #: ``both`` parties compute
    compute: list[str] | None = None

    def canonical_bytes(self) -> bytes:
        data = self.model_dump(mode="json")
        # unset fields added later are left out, so jobs written before them hash as before
        for late in ("preprocessing", "compute"):
            if data.get(late) is None:
                data.pop(late, None)
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()
