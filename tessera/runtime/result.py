"""What a run of a party program returns: each party's result and communication figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunResult"]


@dataclass
class RunResult:
    """Per-party results (by party name), per-endpoint communication figures, and wall time."""

    results: dict[str, Any]
    comm: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def __getitem__(self, party: str) -> Any:
        return self.results[party]

    @property
    def rounds(self) -> int:
        """Rounds of the party that counted the most (all parties count the same in our protocols)."""
        return max((c.get("rounds", 0) for c in self.comm.values()), default=0)

    @property
    def bytes_sent(self) -> dict[str, int]:
        return {name: int(c.get("bytes_sent", 0)) for name, c in self.comm.items()}
