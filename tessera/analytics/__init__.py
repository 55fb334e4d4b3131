"""The analysis library. Importing this package registers every analysis by name and version."""

from tessera.analytics import (  # noqa: F401 - registration
    correlation,
    describe,
    distribution,
    dp_stats,
    glm_hybrid,
    hypothesis,
    logistic,
    meta,
    regression,
)
from tessera.analytics.base import Analysis, Plan, Release
from tessera.analytics.registry import available, get

__all__ = ["Analysis", "Plan", "Release", "available", "get"]
