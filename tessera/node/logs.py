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

__all__ = ["setup_logging", "JsonFormatter", "log"]

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


def setup_logging(node: str, path: Path | None, level: int = logging.INFO) -> logging.Logger:
    """Send the node's logs as JSON lines to stderr and, if given, to ``path``."""
    logger = logging.getLogger("tessera.node")
    logger.setLevel(level)
    logger.handlers.clear()
    logger.propagate = False
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path is not None:
        handlers.append(logging.FileHandler(path, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(JsonFormatter())
        logger.addHandler(h)
    return logger


def log(logger: logging.Logger, level: int, msg: str, **fields: Any) -> None:
    logger.log(level, msg, extra=fields)
