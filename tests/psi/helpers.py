"""Running PSI parties as threads over in-memory channels, and channels that watch or misbehave."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from tessera.net.channel import Channel, Payload
from tessera.net.memory import memory_mesh
from tessera.psi import PsiResult, PsiSpec, run_psi


class Wrapped(Channel):
    """A channel around another that records traffic and can rewrite or swallow what it sends.

    ``on_send(peer, payload)`` returns the payload to send (or raises, to simulate a crash);
    ``silent`` swallows aborts, so a failing party just disappears without an ABORT.
    """

    def __init__(
        self, inner: Channel, on_send: Callable[[int, bytes], bytes] | None = None, silent: bool = False
    ) -> None:
        super().__init__(inner.me, inner.names)
        self.inner = inner
        self.on_send = on_send
        self.silent = silent
        self.received: list[bytes] = []
        self.sent: list[bytes] = []

    def _send_raw(self, peer: int, payload: Payload) -> None:
        data = bytes(payload)
        if self.on_send is not None:
            data = self.on_send(peer, data)
        self.sent.append(data)
        self.inner._send_raw(peer, data)

    def _recv_raw(self, peer: int) -> bytes:
        data = bytes(self.inner._recv_raw(peer))
        self.received.append(data)
        return data

    def _abort_raw(self, reason: str) -> None:
        if not self.silent:
            self.inner._abort_raw(reason)

    def close(self) -> None:
        self.inner.close()


def run_parties(
    idsets: Sequence[Sequence[Any]],
    spec: PsiSpec | Sequence[PsiSpec],
    *,
    timeout: float = 20.0,
    wrap: dict[int, Callable[[Channel], Channel]] | None = None,
    kwargs: dict[int, dict[str, Any]] | None = None,
) -> tuple[dict[int, PsiResult], dict[int, BaseException], list[Channel]]:
    """Run ``run_psi`` for every party in its own thread; results and errors by endpoint index."""
    names = [f"bank-{chr(ord('a') + i)}" for i in range(len(idsets))]
    mesh: list[Channel] = list(memory_mesh(names, timeout=timeout))
    for i, w in (wrap or {}).items():
        mesh[i] = w(mesh[i])
    specs = [spec] * len(idsets) if isinstance(spec, PsiSpec) else list(spec)
    results: dict[int, PsiResult] = {}
    errors: dict[int, BaseException] = {}

    def party(i: int) -> None:
        try:
            results[i] = run_psi(mesh[i], idsets[i], specs[i], **(kwargs or {}).get(i, {}))
        except BaseException as e:
            errors[i] = e

    threads = [threading.Thread(target=party, args=(i,)) for i in range(len(idsets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors, mesh


def ok(idsets: Sequence[Sequence[Any]], spec: PsiSpec, **kw: Any) -> dict[int, PsiResult]:
    """Results of a run that must succeed."""
    results, errors, _ = run_parties(idsets, spec, **kw)
    assert not errors, errors
    return results


def joined(results: dict[int, PsiResult], values: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Plaintext twin of the secret-shared join an ``aligned`` result plans: each list's kept values."""
    out = []
    for q in sorted(results):
        al = results[q].alignment
        assert al is not None
        column = [values[q][r] for r in al.input_rows]
        perm = results[al.shuffler[q]].alignment.shuffles[q]
        column = [column[i] for i in perm]
        out.append([column[i] for i in al.select[q]])
    return out
