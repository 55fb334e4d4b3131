"""The analysis library: analyses by name and version. Jobs can only name what is here."""

from __future__ import annotations

from typing import Any, TypeVar

from packaging.version import Version

from tessera.analytics.base import Analysis
from tessera.errors import PlanError

__all__ = ["register", "get", "available"]

_REGISTRY: dict[str, dict[str, type[Analysis[Any]]]] = {}

_A = TypeVar("_A", bound=type[Analysis[Any]])


def register(cls: _A) -> _A:
    """Class decorator adding an analysis to the library."""
    versions = _REGISTRY.setdefault(cls.name, {})
    if cls.version in versions:
        raise ValueError(f"analysis {cls.name} v{cls.version} is registered twice")
    versions[cls.version] = cls
    return cls


def get(name: str, version: str | None = None) -> Analysis[Any]:
    """The analysis ``name`` at ``version`` (default: the newest). Its parameters' type is known
    only at run time: make them with :meth:`~tessera.analytics.base.Analysis.parse_params`."""
    versions = _REGISTRY.get(name)
    if not versions:
        raise PlanError(f"no analysis named {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    if version is None:
        version = max(versions, key=Version)
    if version not in versions:
        raise PlanError(f"analysis {name!r} has no version {version}; available: {sorted(versions)}")
    return versions[version]()


def available() -> dict[str, list[str]]:
    """Every analysis name with its versions."""
    return {n: sorted(v, key=Version) for n, v in sorted(_REGISTRY.items())}
