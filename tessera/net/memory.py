"""In-process channels: the same protocols, run by threads of one process.

Messages are copied on send, so no endpoint can see or change another endpoint's memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from tessera.errors import ProtocolAbort, TransportError
from tessera.net.channel import Channel, Payload

__all__ = ["MemoryChannel", "memory_mesh"]


class _Inbox:
    """Everything addressed to one endpoint: a queue per sender, and abort notices."""

    def __init__(self, n: int) -> None:
        self.cond = threading.Condition()
        self.queues: list[deque[bytearray]] = [deque() for _ in range(n)]
        self.aborted: tuple[str, str] | None = None


class MemoryChannel(Channel):
    """One endpoint of an in-memory full mesh made by :func:`memory_mesh`."""

    def __init__(self, me: int, names: Sequence[str], inboxes: list[_Inbox], timeout: float) -> None:
        super().__init__(me, names)
        self._inboxes = inboxes
        self._timeout = timeout
        self._closed = False

    def _send_raw(self, peer: int, payload: Payload) -> None:
        inbox = self._inboxes[peer]
        with inbox.cond:
            inbox.queues[self.me].append(bytearray(payload))
            inbox.cond.notify_all()

    def _recv_raw(self, peer: int) -> bytearray:
        inbox = self._inboxes[self.me]
        queue = inbox.queues[peer]
        with inbox.cond:
            ok = inbox.cond.wait_for(lambda: queue or inbox.aborted is not None, self._timeout)
            if inbox.aborted is not None and not queue:
                raise ProtocolAbort(*inbox.aborted)
            if not ok:
                raise TransportError(
                    f"{self.name!r} timed out after {self._timeout:g} s waiting for {self.names[peer]!r}"
                )
            return queue.popleft()

    def _abort_raw(self, reason: str) -> None:
        for i, inbox in enumerate(self._inboxes):
            if i == self.me:
                continue
            with inbox.cond:
                if inbox.aborted is None:
                    inbox.aborted = (self.name, reason)
                inbox.cond.notify_all()

    def close(self) -> None:
        self._closed = True


def memory_mesh(names: Sequence[str], timeout: float = 60.0, session_id: bytes = b"") -> list[MemoryChannel]:
    """A full mesh of in-memory channels, one per endpoint named in ``names``, of the session
    ``session_id`` (it enters the sessions' transcript hashes)."""
    inboxes = [_Inbox(len(names)) for _ in names]
    channels = [MemoryChannel(i, names, inboxes, timeout) for i in range(len(names))]
    for ch in channels:
        ch.session_id = bytes(session_id)
    return channels
