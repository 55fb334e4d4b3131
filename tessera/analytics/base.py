"""What an analysis is: a name and version, declared parameters, and a three-stage plan.

* the **local stage** runs at each party on its own rows, in plaintext (DuckDB SQL or numpy),
  and reduces them to what the secure stage needs;
* the **secure stage** runs over secret shares (any protocol);
* the **release** states exactly which values are revealed, and to whom.

Vertical analyses run their secure stage on *shared rows* (:data:`SharedRows`): each column of
the aligned rows as a secret tensor, transformed row by row as the analysis's local stage
transforms it. Where every party knows its aligned rows (PSI ``intersection`` mode) the holders
share their columns (:func:`tessera.analytics.common.share_columns`); in PSI ``aligned`` mode the
rows come out of a secret-shared join and nobody knows which rows they are
(:mod:`tessera.plan.aligned`). Either way :meth:`Analysis.secure_rows` does the work.

Analyses know :class:`~tessera.mpc.tensor.SecretTensor`, never the protocol beneath it.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from tessera.data.schema import Schema
from tessera.errors import PlanError
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor

__all__ = ["Analysis", "Plan", "Release", "Params", "PARTITIONS", "SharedRows"]

#: Secret-shared aligned rows: column name -> 1-D secret tensor; every column has the same
#: public length (the number of aligned rows).
SharedRows = Mapping[str, SecretTensor]

PARTITIONS = ("horizontal", "vertical")


class Params(BaseModel):
    """Base of every analysis's parameters: validated, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Release:
    """One revealed output: its name, what it is, and who receives it (None: every recipient)."""

    name: str
    description: str
    recipients: tuple[str, ...] | None = None


@dataclass
class Plan:
    """The three stages of one job, and the encodings the planner chose."""

    analysis: str
    version: str
    partition: str
    columns: list[str]
    local: list[str]
    secure: list[str]
    release: list[Release]
    frac_bits: int = 16
    #: parties that receive the released outputs (None: every party)
    recipients: list[str] | None = None
    #: public affine scaling per column: value' = (value - center) / half_width, so |value'| <= 1
    scaling: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: public facts the stages share (e.g. numbers of category levels)
    meta: dict[str, Any] = field(default_factory=dict)

    def reveals(self) -> list[str]:
        return [f"{r.name} -> {', '.join(r.recipients) if r.recipients else 'all recipients'}" for r in self.release]

    def explain(self) -> str:
        """A plain-text account of the plan and what it reveals."""
        lines = [f"{self.analysis} v{self.version} ({self.partition} partitioning), columns: {', '.join(self.columns)}"]
        lines.append(f"encoding: Z_2^64 fixed point with {self.frac_bits} fractional bits")
        for title, items in (("local stage (each party, plaintext, own rows)", self.local),
                             ("secure stage (secret shares)", self.secure)):
            lines.append(title + ":")
            lines += [f"  - {x}" for x in items]
        lines.append("release (the only values revealed):")
        lines += [f"  - {r.name}: {r.description}" + (f" -> {', '.join(r.recipients)}" if r.recipients else "")
                  for r in self.release]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


class Analysis(abc.ABC):
    """An analysis from the library; jobs name it by ``name`` and ``version``."""

    name: ClassVar[str]
    version: ClassVar[str]
    Params: ClassVar[type[Params]]
    partitions: ClassVar[tuple[str, ...]] = ("horizontal",)
    description: ClassVar[str] = ""

    @abc.abstractmethod
    def plan(self, schema: Schema, params: Params, partition: str, parties: list[str]) -> Plan:
        """Check the job against the schema's declared bounds and return its plan.

        Raises :class:`~tessera.errors.PlanError` for a job that could overflow the ring or is
        otherwise unsafe, naming the quantity and how to fix it.
        """

    @abc.abstractmethod
    def local(self, columns: dict[str, np.ndarray], params: Params, plan: Plan) -> dict[str, np.ndarray]:
        """The local stage at one party: its own rows in, plaintext reductions out."""

    @abc.abstractmethod
    def secure(
        self, session: Session, local: dict[str, np.ndarray], params: Params, plan: Plan, holders: dict[str, list[str]]
    ) -> dict[str, Any]:
        """The secure stage at one party; returns the released outputs this party received.

        ``holders`` maps each column to the parties that hold it (all parties for horizontal
        partitioning, the owning party for vertical).
        """

    def secure_rows(self, session: Session, rows: SharedRows, params: Params, plan: Plan) -> dict[str, Any]:
        """The vertical secure stage over secret-shared aligned rows; returns what this party received.

        ``rows[c]`` is column ``c`` of the aligned rows (every column of ``plan.columns``), as
        the analysis's vertical local stage transforms it (scaled by ``plan.scaling`` where the
        plan scales ``c``), at the session's fixed-point scale. The number of rows is public.
        Analyses that support PSI ``aligned`` mode override this.
        """
        raise PlanError(f"{self.name} cannot run on secret-shared aligned rows (PSI aligned mode)")

    @classmethod
    def takes_shared_rows(cls) -> bool:
        """Whether :meth:`secure_rows` is implemented (the analysis supports PSI ``aligned`` mode)."""
        return cls.secure_rows is not Analysis.secure_rows
