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
(:mod:`tessera.execution.aligned`). Either way :meth:`Analysis.secure_rows` does the work.

Analyses know :class:`~tessera.mpc.tensor.SecretTensor`, never the protocol beneath it.
"""

from __future__ import annotations

import abc
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError

from tessera.analytics.results import Result
from tessera.data.local import LocalTable
from tessera.data.onehot import indicators, with_indicators
from tessera.data.schema import ColumnType, Schema
from tessera.errors import ParamsError, PlanError
from tessera.mpc.session import Session
from tessera.mpc.tensor import Opened, SecretTensor

__all__ = ["Analysis", "Plan", "Release", "Params", "params_error", "P", "PARTITIONS", "SharedRows", "Local", "Holders"]

#: Secret-shared aligned rows: column name -> 1-D secret tensor; every column has the same
#: public length (the number of aligned rows).
SharedRows = Mapping[str, SecretTensor]

#: What a local stage returns and the secure stage receives: named plaintext arrays.
Local = dict[str, npt.NDArray[Any]]

#: Column -> the parties holding it (every party horizontally, its owner vertically).
Holders = dict[str, list[str]]

PARTITIONS = ("horizontal", "vertical")


class Params(BaseModel):
    """Base of every analysis's parameters: validated, no unknown fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def params_error(analysis: str, model: type[BaseModel], error: ValidationError) -> ParamsError:
    """``error`` (pydantic's, from validating ``model``) as a :class:`ParamsError` naming every
    field and its problem: a missing field is "required", a field the model does not have is
    "not a parameter" (with the closest names it does have, and the list of them)."""
    fields = list(model.model_fields)
    problems = []
    listed = False
    for err in error.errors():
        where = ".".join(str(x) for x in err["loc"]) or "(parameters)"
        if err["type"] == "missing":
            problem = "required"
        elif err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(err["loc"][-1]), fields, n=1)
            problem = "not a parameter" + (f" (did you mean {close[0]!r}?)" if close else "")
            if not listed:
                problem += f"; the parameters are {', '.join(fields)}"
                listed = True
        else:
            problem = err["msg"]
        problems.append((where, problem))
    return ParamsError(analysis, problems)


#: An analysis's parameter model.
P = TypeVar("P", bound=Params)


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


class Analysis(abc.ABC, Generic[P]):
    """An analysis from the library; jobs name it by ``name`` and ``version``.

    Generic in its parameter model ``P`` (``params_model``): a concrete analysis subclasses
    ``Analysis[ItsParams]``, and every stage receives the validated ``ItsParams``
    (:meth:`parse_params` makes them from a job's raw parameters).
    """

    name: ClassVar[str]
    version: ClassVar[str]
    params_model: ClassVar[type[P]]
    partitions: ClassVar[tuple[str, ...]] = ("horizontal",)
    description: ClassVar[str] = ""
    #: the class of :meth:`result` (:mod:`tessera.analytics.results`; the generic one by default)
    result_type: ClassVar[type[Result]] = Result
    #: how the compute parties combine the contributions of data owners that do not compute:
    #: ``"inputs"``, the inputs each owner makes in :meth:`secure` (all before its first reveal;
    #: the secure stage sums or concatenates them as it does for parties); ``"rows"``, the
    #: owners' scaled rows, concatenated, through :meth:`secure_rows` (analyses whose owners'
    #: inputs depend on a revealed value, such as pooled moments that need the total count)
    owner_contributions: ClassVar[Literal["inputs", "rows"]] = "inputs"

    def parse_params(self, raw: Mapping[str, Any]) -> P:
        """The job's raw parameters validated against :attr:`params_model`.

        Raises :class:`~tessera.errors.ParamsError` naming every offending field and its problem.
        """
        if not isinstance(raw, Mapping):
            raise ParamsError(f"{self.name} v{self.version}",
                              [("(parameters)", f"a table of named parameters is expected, not {type(raw).__name__}")])
        try:
            return self.params_model.model_validate(dict(raw))
        except ValidationError as e:
            raise params_error(f"{self.name} v{self.version}", self.params_model, e) from None

    def encode(self, schema: Schema, params: P) -> tuple[Schema, P, list[str]]:
        """Categorical features one-hot encoded, once per job, before :meth:`plan`: an analysis
        whose parameters have ``features`` (a list of columns) and names a categorical column in
        it gets, in its place, the indicators ``col[level]`` of every declared level but the first
        (the reference level; :mod:`tessera.data.onehot`). Returns the schema with the indicators
        as ``bool`` columns (what :meth:`plan` checks and scales), the parameters with the
        expanded features (what every stage sees) and a note per encoded column for the plan.
        Levels are public (declared in the schema), so the encoding reveals nothing new. Other
        parameters come back as they are."""
        features = getattr(params, "features", None)
        if not isinstance(features, list):
            return schema, params, []
        expanded: list[str] = []
        notes = []
        for f in features:
            col = schema.column(f) if f in schema else None
            if col is None or col.type is not ColumnType.CATEGORY:
                expanded.append(f)
                continue
            assert col.levels is not None
            names = indicators(col)
            if not names:
                raise PlanError(f"feature {f!r} is categorical with one level ({col.levels[0]!r}): it does not vary, "
                                "leave it out")
            clash = [n for n in names if n in schema or n in features]
            if clash:
                raise PlanError(f"feature {f!r}: its indicator columns {clash} would be named like existing columns; "
                                "rename those columns")
            expanded += names
            notes.append(f"feature {f!r} (categorical) is one-hot encoded as {', '.join(names)}; reference level "
                         f"{col.levels[0]!r} (the first declared level: its rows have every indicator 0)")
        if not notes:
            return schema, params, []
        try:
            encoded = self.params_model.model_validate({**params.model_dump(), "features": expanded})
        except ValidationError as e:
            raise params_error(f"{self.name} v{self.version}", self.params_model, e) from None
        return with_indicators(schema, expanded), encoded, notes

    @abc.abstractmethod
    def plan(self, schema: Schema, params: P, partition: str, parties: list[str]) -> Plan:
        """Check the job against the schema's declared bounds and return its plan.

        Raises :class:`~tessera.errors.PlanError` for a job that could overflow the ring or is
        otherwise unsafe, naming the quantity and how to fix it.
        """

    @abc.abstractmethod
    def local(self, columns: LocalTable, params: P, plan: Plan) -> Local:
        """The local stage at one party: its own checked rows (the columns of ``plan.columns`` it
        holds, loaded by :func:`tessera.data.load`) in, plaintext reductions out."""

    @abc.abstractmethod
    def secure(self, session: Session, local: Local, params: P, plan: Plan, holders: Holders) -> dict[str, Any]:
        """The secure stage at one party; returns the released outputs this party received.

        ``holders`` maps each column to the parties that hold it (all parties for horizontal
        partitioning, the owning party for vertical).
        """

    def secure_rows(self, session: Session, rows: SharedRows, params: P, plan: Plan) -> dict[str, Any]:
        """The vertical secure stage over secret-shared aligned rows; returns what this party received.

        ``rows[c]`` is column ``c`` of the aligned rows (every column of ``plan.columns``), as
        the analysis's vertical local stage transforms it (scaled by ``plan.scaling`` where the
        plan scales ``c``), at the session's fixed-point scale. The number of rows is public.
        Analyses that support PSI ``aligned`` mode override this.
        """
        raise PlanError(f"{self.name} cannot run on secret-shared aligned rows (PSI aligned mode)")

    def finish(self, params: P, plan: Plan, public: dict[str, Any], opened: list[Opened] | None) -> dict[str, Any]:
        """The public post-processing of the values this analysis reveals to its recipients: from
        ``opened`` (the values of its one reveal to the recipients, in order; None if it revealed
        nothing to them, e.g. no rows) and ``public`` (what every party's secure stage returned,
        e.g. the row count), what a recipient receives. Runs wherever the values are opened: at a
        recipient party, or at an analyst's client for results sealed to it
        (:mod:`tessera.jobs.sealed`). Analyses whose results can be sealed implement it
        (:meth:`seals`) and use it for their own recipients too."""
        raise PlanError(f"{self.name} cannot seal its results to an analyst yet")

    def result(self, outputs: Mapping[str, Any], params: Mapping[str, Any] | Params, *, plan: Plan | None = None,
               plan_text: str = "", revealed: list[str] | None = None, schema: Schema | None = None) -> Result:
        """The released ``outputs`` of a job with ``params`` (validated here if raw) as a result
        object (:attr:`result_type`): named estimates, ``summary()``, ``to_frame()``, ``to_dict()``.
        Public post-processing only."""
        parsed = params if isinstance(params, Params) else self.parse_params(params)
        return self.result_type(self.name, self.version, outputs, parsed.model_dump(), revealed=revealed or [],
                                plan=plan_text or (plan.explain() if plan is not None else ""), plan_object=plan,
                                schema=schema)

    def secure_table(self, session: Session, table: LocalTable, params: P, plan: Plan,
                     holders: Holders) -> dict[str, Any]:
        """A secure stage that reads the party's checked rows again while it runs (the hybrid GLMs
        compute derivatives at each revealed iterate): replaces :meth:`local` and :meth:`secure`
        for analyses that implement it (:meth:`reads_table`); returns what this party received."""
        raise PlanError(f"{self.name} has no secure stage over the party's table")

    @classmethod
    def reads_table(cls) -> bool:
        """Whether :meth:`secure_table` is implemented (the secure stage reads the party's rows)."""
        return cls.secure_table is not Analysis.secure_table

    @classmethod
    def seals(cls) -> bool:
        """Whether :meth:`finish` is implemented (results can be sealed to analysts)."""
        return cls.finish is not Analysis.finish

    @classmethod
    def takes_shared_rows(cls) -> bool:
        """Whether :meth:`secure_rows` is implemented (the analysis supports PSI ``aligned`` mode)."""
        return cls.secure_rows is not Analysis.secure_rows
