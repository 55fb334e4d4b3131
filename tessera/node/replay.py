"""The replay guard of a node: the nonces of the peer messages it accepted, kept in SQLite.

A signed envelope is fresh for :data:`~tessera.node.peers.MAX_SKEW` seconds either side of the
receiver's clock, so its nonce must be remembered that long — also across a restart of the
node (an in-memory set forgets it, and a message recorded before the restart could be played
again). Each nonce is kept until its envelope can no longer be fresh, then pruned. The table
holds nonces and times only, never a message body.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from tessera.node.peers import MAX_SKEW, ReplayGuard

__all__ = ["SqliteReplayGuard"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS seen_nonces (nonce TEXT PRIMARY KEY, expires REAL NOT NULL)"


class SqliteReplayGuard(ReplayGuard):
    """Nonces seen by this node in ``path`` (an SQLite file in the node's state directory)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        if not path.exists():  # the owner's only, as every state file of a node (#15.15)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a nonce accepted is on disk before the reply
        self._db.execute(_SCHEMA)
        self._db.execute("CREATE INDEX IF NOT EXISTS seen_nonces_expires ON seen_nonces (expires)")
        self._db_lock = threading.Lock()
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists():
                p.chmod(0o600)

    def fresh(self, nonce: str, ts: float) -> bool:
        """Record ``nonce`` (of an envelope sent at ``ts``); False if it was recorded before.

        It is kept until the envelope could no longer pass the freshness check anywhere near
        this clock (``max(ts, now) + MAX_SKEW``); older nonces are pruned here.
        """
        now = time.time()
        expires = max(ts, now) + MAX_SKEW
        with self._db_lock:
            self._db.execute("DELETE FROM seen_nonces WHERE expires < ?", (now,))
            cur = self._db.execute("INSERT OR IGNORE INTO seen_nonces (nonce, expires) VALUES (?, ?)",
                                   (nonce, expires))
            return cur.rowcount == 1

    def __len__(self) -> int:
        """How many nonces are remembered now."""
        with self._db_lock:
            return int(self._db.execute("SELECT COUNT(*) FROM seen_nonces").fetchone()[0])

    def close(self) -> None:
        with self._db_lock:
            self._db.close()
