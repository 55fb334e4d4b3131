"""One write transaction on a node's SQLite file, the way every governance store takes it.

``BEGIN IMMEDIATE`` takes the write lock at the start, so concurrent writers in threads or
processes queue (for up to a minute) instead of failing half-way; WAL mode lets readers go on
meanwhile. Any exception rolls the transaction back and propagates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["transaction"]


@contextmanager
def transaction(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection inside ``BEGIN IMMEDIATE``; committed on success, rolled back on error."""
    db = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    finally:
        db.close()
