"""The configuration of one party (or dealer) process: endpoints, identity, program.

Written as JSON by the local cluster launcher, or by hand for parties on separate machines
(``tessera party run --config FILE``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["EndpointSpec", "PartyConfig", "PROGRAM_PREFIX"]

#: Party programs are named by ``module:function`` inside Tessera itself: no code from an
#: analyst (or any other outside source) runs on a party.
PROGRAM_PREFIX = "tessera."


class EndpointSpec(BaseModel):
    """Where an endpoint listens and the fingerprint of the certificate it must present."""

    model_config = ConfigDict(extra="forbid")

    name: str
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    fingerprint: str
    certificate: str = Field("", description="the peer's certificate, PEM (public, optional); must match the fingerprint")


class PartyConfig(BaseModel):
    """Everything one process needs to join a session."""

    model_config = ConfigDict(extra="forbid")

    name: str
    endpoints: list[EndpointSpec]
    parties: list[str]
    protocol: str
    identity_dir: str
    session_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    frac_bits: int = 16
    program: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    timeout: float = 60.0
    connect_timeout: float = 30.0
    max_frame: int = 1 << 30
    result_path: str | None = None
    #: a listening socket on this endpoint's port inherited from the launcher (its fd number), so
    #: that no other process can take the port between choosing it and the endpoint's start
    listen_fd: int | None = Field(None, ge=0)
    #: where to keep figures of the running session (rounds, bytes, seconds) for a watcher
    progress_path: str | None = None

    @field_validator("program")
    @classmethod
    def _inside_tessera(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith(PROGRAM_PREFIX) or ":" not in v):
            raise ValueError(f"program {v!r} must be 'module:function' inside the tessera package")
        return v

    @property
    def index(self) -> int:
        return [e.name for e in self.endpoints].index(self.name)

    @property
    def is_dealer(self) -> bool:
        return self.name not in self.parties

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=2))

    @classmethod
    def load(cls, path: str | Path) -> PartyConfig:
        return cls.model_validate(json.loads(Path(path).read_text()))
