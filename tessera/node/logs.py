"""Structured logs: one JSON object per line, with the node name and, where there is one, the job id.

Log records carry identifiers, states, reasons and figures only: never tokens, keys, shares,
data values or results.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["setup_logging", "JsonFormatter", "RepeatFilter", "log"]

_FIELDS = ("node", "job_id", "state", "peer", "kind", "analyst", "seconds", "reasons", "port", "pid")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for f in _FIELDS:
            if hasattr(record, f):
                out[f] = getattr(record, f)
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)


class RepeatFilter(logging.Filter):
    """Pass a message the first time, then at most once every ``window`` seconds, saying how many
    like it were dropped meanwhile (a message is known by its first line). A flood of the same
    error (e.g. ``accept()`` failing for every connection attempt) stays a few lines."""

    def __init__(self, window: float = 60.0) -> None:
        super().__init__()
        self.window = window
        self._seen: dict[str, tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = record.getMessage().split("\n", 1)[0][:200]
        now = time.monotonic()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if len(self._seen) > 1000:  # many different messages: forget the old ones
            self._seen.clear()
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg, record.args = f"{record.getMessage()} ({last[1]} more like it in the last {self.window:g} s)", ()
        return True


def setup_logging(node: str, path: Path | None, level: int = logging.INFO) -> logging.Logger:
    """Send the node's logs as JSON lines to stderr and, if given, to ``path``; the event loop's
    and the HTTP server's own messages go the same way, with repeats held back (:class:`RepeatFilter`)."""
    logger = logging.getLogger("tessera.node")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(JsonFormatter())
    for lg in (logger, logging.getLogger("asyncio"), logging.getLogger("uvicorn.error")):
        lg.setLevel(level if lg is logger else logging.WARNING)
        lg.handlers.clear()
        lg.filters.clear()
        lg.propagate = False
        if lg is not logger:
            lg.addFilter(RepeatFilter())
        for h in handlers:
            lg.addHandler(h)
    return logger


def log(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    logger.log(level, msg, extra=fields)
