"""The analysis library: analyses by name and version. Jobs can only name what is here.

:func:`catalogue` describes the library from the analyses themselves (each one's parameter
model, partitions and release), so ``tessera analyses`` can never disagree with what a job
accepts.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import asdict, dataclass
from typing import Any, TypeVar, get_args

from packaging.version import Version
from pydantic.fields import FieldInfo

from tessera.analytics.base import Analysis
from tessera.errors import PlanError

__all__ = ["register", "get", "available", "ParamInfo", "AnalysisInfo", "catalogue", "describe"]

_REGISTRY: dict[str, dict[str, type[Analysis[Any]]]] = {}

_A = TypeVar("_A", bound=type[Analysis[Any]])


def register(cls: _A) -> _A:
    """Class decorator adding an analysis to the library."""
    versions = _REGISTRY.setdefault(cls.name, {})
    if cls.version in versions:
        raise ValueError(f"analysis {cls.name} v{cls.version} is registered twice")
    versions[cls.version] = cls
    return cls


def _unknown(name: str) -> PlanError:
    close = [n for n in sorted(_REGISTRY) if name and n.startswith(name)][:1] \
        or difflib.get_close_matches(name, list(_REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return PlanError(f"no analysis named {name!r}{hint}; available: {', '.join(sorted(_REGISTRY))}")


def _class(name: str, version: str | None) -> type[Analysis[Any]]:
    versions = _REGISTRY.get(name)
    if not versions:
        raise _unknown(name)
    if version is None:
        version = max(versions, key=Version)
    if version not in versions:
        raise PlanError(f"analysis {name!r} has no version {version}; available: {sorted(versions, key=Version)}")
    return versions[version]


def get(name: str, version: str | None = None) -> Analysis[Any]:
    """The analysis ``name`` at ``version`` (default: the newest). Its parameters' type is known
    only at run time: make them with :meth:`~tessera.analytics.base.Analysis.parse_params`.

    Raises :class:`~tessera.errors.PlanError` naming an unknown analysis (and the closest name
    there is) or version."""
    return _class(name, version)()


def available() -> dict[str, list[str]]:
    """Every analysis name with its versions."""
    return {n: sorted(v, key=Version) for n, v in sorted(_REGISTRY.items())}


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of an analysis, as its parameter model declares it."""

    name: str
    #: the declared type, e.g. ``list[str]`` or ``float | None``
    type: str
    required: bool
    #: the default (None for a required parameter)
    default: Any
    #: the declared limits, e.g. ``>= 1, <= 50`` or ``at least 2 items`` ("" if none)
    constraints: str
    description: str


@dataclass(frozen=True)
class AnalysisInfo:
    """One analysis of the library: what it computes, what it releases and its parameters."""

    name: str
    version: str
    #: every registered version (the newest is described)
    versions: list[str]
    partitions: list[str]
    #: what the analysis releases (the plan of a job names every released value exactly)
    reveals: str
    #: what it computes (the first paragraph of its docstring)
    summary: str
    params: list[ParamInfo]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _constraints(info: FieldInfo) -> str:
    out = []
    for m in info.metadata:  # annotated-types' Gt, Ge, Lt, Le, MinLen, MaxLen, as pydantic keeps them
        for attr, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(m, attr, None) is not None:
                out.append(f"{op} {getattr(m, attr)}")
        for attr, word in (("min_length", "at least"), ("max_length", "at most")):
            n = getattr(m, attr, None)
            if n is not None:
                out.append(f"{word} {n} item{'s' if n != 1 else ''}")
    return ", ".join(out)


def _summary(cls: type[Analysis[Any]]) -> str:
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("``", "")


def describe(name: str, version: str | None = None) -> AnalysisInfo:
    """The analysis ``name`` (at ``version``, default the newest) described from its parameter
    model: each parameter's type, default, limits and description, and what it releases."""
    cls = _class(name, version)
    params = []
    for field, info in cls.params_model.model_fields.items():
        required = info.is_required()
        params.append(ParamInfo(
            name=field, type=_type_name(info.annotation), required=required,
            default=None if required else info.get_default(call_default_factory=True),
            constraints=_constraints(info), description=info.description or ""))
    return AnalysisInfo(name=cls.name, version=cls.version, versions=available()[cls.name],
                        partitions=list(cls.partitions), reveals=cls.description, summary=_summary(cls),
                        params=params)


def catalogue() -> list[AnalysisInfo]:
    """Every analysis of the library (its newest version), by name."""
    return [describe(n) for n in sorted(_REGISTRY)]
