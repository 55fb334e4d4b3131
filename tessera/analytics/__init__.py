"""The analysis library. Importing this package registers every analysis by name and version."""

from tessera.analytics import correlation, describe, distribution, dp_stats, hypothesis, logistic, meta, regression  # noqa: F401 - registration
from tessera.analytics.base import Analysis, Plan, Release
from tessera.analytics.registry import available, get

__all__ = ["Analysis", "Plan", "Release", "available", "get"]
