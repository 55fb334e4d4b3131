"""The channel interface every transport implements, and communication accounting.

A :class:`Channel` is one endpoint's set of links to its peers. Endpoints are numbered
``0 .. len(names)-1`` (parties first, then helper roles such as the semi2k dealer). Between two
endpoints, messages arrive complete and in the order they were sent. Protocols know only this
interface: ``send(peer, payload)``, ``recv(peer)`` and ``abort(reason)``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from tessera.errors import SessionError

__all__ = ["Channel", "CommStats", "Payload", "Received"]

#: what ``send`` takes: any C-contiguous buffer (e.g. ``array.data`` of a numpy array)
Payload = bytes | bytearray | memoryview
#: what ``recv`` returns: a bytes-like object; read it with ``bytes(...)`` or ``numpy.frombuffer``
Received = bytes | bytearray | memoryview


@dataclass
class CommStats:
    """What one endpoint sent: bytes and messages per peer, and protocol rounds.

    A *round* is one communication step of the protocol (all messages of the step travel in
    parallel); protocols count them through :meth:`Channel.round`.
    """

    names: list[str]
    bytes_sent: list[int] = field(default_factory=list)
    messages_sent: list[int] = field(default_factory=list)
    rounds: int = 0

    def __post_init__(self) -> None:
        if not self.bytes_sent:
            self.bytes_sent = [0] * len(self.names)
            self.messages_sent = [0] * len(self.names)

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes_sent)

    def as_dict(self) -> dict[str, object]:
        return {
            "rounds": self.rounds,
            "bytes_sent": self.total_bytes,
            "bytes_sent_to": {n: b for n, b in zip(self.names, self.bytes_sent) if b},
            "messages_sent": sum(self.messages_sent),
        }


class Channel(abc.ABC):
    """Links from endpoint ``me`` to every other endpoint in ``names``.

    Subclasses implement :meth:`_send_raw`, :meth:`_recv_raw`, :meth:`_abort_raw` and
    :meth:`close`; the public methods validate the peer and keep :attr:`stats`.
    """

    def __init__(self, me: int, names: Sequence[str]) -> None:
        if not 0 <= me < len(names):
            raise SessionError(f"endpoint index {me} is not among {len(names)} endpoints")
        self.me = me
        self.names = list(names)
        self.stats = CommStats(self.names)
        #: the session these links belong to (a transport that has one sets it; empty otherwise)
        self.session_id = b""

    @property
    def name(self) -> str:
        return self.names[self.me]

    def peer_index(self, peer: int | str) -> int:
        """The index of ``peer`` given by index or name; a clear error for an unknown peer."""
        if isinstance(peer, str):
            try:
                return self.names.index(peer)
            except ValueError:
                raise SessionError(f"unknown peer {peer!r}; endpoints are {self.names}") from None
        if not 0 <= peer < len(self.names) or peer == self.me:
            raise SessionError(f"no link from {self.name!r} to endpoint {peer}")
        return peer

    def send(self, peer: int, payload: Payload) -> None:
        """Send one message to ``peer``. Returns once the payload may be reused."""
        peer = self.peer_index(peer)
        n = len(payload) if not isinstance(payload, memoryview) else payload.nbytes
        self.stats.bytes_sent[peer] += n
        self.stats.messages_sent[peer] += 1
        self._send_raw(peer, payload)

    def recv(self, peer: int) -> Received:
        """The next message from ``peer``, as a bytes-like object (``bytes(...)`` or
        ``numpy.frombuffer(...)`` read it; transports may return a memoryview).

        Raises :class:`~tessera.errors.ProtocolAbort` if any peer aborted and
        :class:`~tessera.errors.TransportError` on timeout or a broken link.
        """
        return self._recv_raw(self.peer_index(peer))

    def round(self) -> None:
        """Count one protocol round (called by protocols once per communication step)."""
        self.stats.rounds += 1

    def abort(self, reason: str) -> None:
        """Tell every peer that this endpoint stops, and why. Never raises."""
        with contextlib.suppress(Exception):
            self._abort_raw(reason)

    @abc.abstractmethod
    def _send_raw(self, peer: int, payload: Payload) -> None: ...

    @abc.abstractmethod
    def _recv_raw(self, peer: int) -> Received: ...

    @abc.abstractmethod
    def _abort_raw(self, reason: str) -> None: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release the links. Idempotent."""
