"""The analyst's client: submit a job to a node, follow it, fetch the result.

    from tessera import Client
    c = Client.from_profile("analyst-1.toml")      # url, pinned fingerprint, token
    job = c.submit({"analysis": "logistic_regression", "version": "1.0", ...}, idempotency_key="q3-model")
    done = c.wait(job["id"], on_progress=print)
    print(c.result(job["id"])["outputs"]["coefficients"])

An analyst whose contract entry names a ``box_key`` (X25519, :func:`tessera.jobs.sealed.new_box_key`)
gets the results of jobs only it receives sealed: ``c.result(job_id, box_key=private_key)`` opens
every party's sealed shares here and reconstructs them; no node sees the values.

The node's certificate is pinned by fingerprint (from the contract or the node's owner); the
token identifies the analyst. The same client with the admin profile lets a data owner approve or
reject jobs waiting for it.
"""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.errors import SealedResultError, TesseraError
from tessera.node.peers import PinnedHTTPS
from tessera.node.setup import read_profile
from tessera.node.states import FINAL_STATES
from tessera.runtime import jsonable

if TYPE_CHECKING:  # the sealing code (and the analyses it decodes with) loads when a result is opened
    from tessera.jobs.sealed import BoxKey

__all__ = ["Client", "JobFailed"]


class JobFailed(TesseraError):
    """The job ended denied, failed or aborted; ``job`` is its final view (with the reasons)."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__(f"job {job['id']} {job['state']}: " + "; ".join(job.get("reasons") or []))
        self.job = job


class Client:
    """An HTTPS client of one node, for an analyst (or, with the admin token, the node's owner)."""

    def __init__(self, url: str, fingerprint: str, token: str, timeout: float = 30.0,
                 box_key: BoxKey | str | bytes | None = None) -> None:
        self.http = PinnedHTTPS(url, fingerprint, token=token, timeout=timeout)
        #: the analyst's private X25519 key for results sealed to it (:meth:`result`)
        self.box_key: BoxKey | None = None
        if box_key is not None:
            from tessera.jobs.sealed import box_key as open_box_key

            self.box_key = open_box_key(box_key)

    @classmethod
    def from_profile(cls, path: str | os.PathLike[str], box_key: BoxKey | str | bytes | None = None) -> Client:
        p = read_profile(path)
        return cls(p["url"], p["fingerprint"], p["token"], box_key=box_key)

    # -- analysts ------------------------------------------------------------------------------

    def submit(self, job: Mapping[str, Any] | str | os.PathLike[str], idempotency_key: str | None = None) -> dict[str, Any]:
        """Submit ``job`` (a mapping of JobSpec fields, or a TOML file of them); returns its view."""
        body = dict(tomllib.loads(Path(job).read_text(encoding="utf-8"))) if isinstance(job, (str, os.PathLike)) \
            else dict(job)
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        return self.http.request("POST", "/v1/jobs", body)  # type: ignore[no-any-return]

    def status(self, job_id: str) -> dict[str, Any]:
        return self.http.request("GET", f"/v1/jobs/{job_id}")  # type: ignore[no-any-return]

    def jobs(self) -> list[dict[str, Any]]:
        return self.http.request("GET", "/v1/jobs")["jobs"]  # type: ignore[no-any-return]

    def wait(self, job_id: str, timeout: float = 900.0, on_progress: Callable[[dict[str, Any]], None] | None = None,
             raise_on_failure: bool = False) -> dict[str, Any]:
        """Follow the job until it reaches a final state (long-polling the node); calls
        ``on_progress(view)`` at every change of state or progress (a running job's rounds, bytes
        and seconds so far, every 2 s or so). Returns the final view."""
        deadline = time.monotonic() + timeout
        job = self.status(job_id)
        if on_progress:
            on_progress(job)
        while job["state"] not in FINAL_STATES:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout:g} s")
            # long-poll for a change of state; come back every few seconds to report progress
            poll = min(2.0 if on_progress else 25.0, left)
            nxt = self.http.request("GET", f"/v1/jobs/{job_id}/wait?timeout={poll:g}&since={job['state']}",
                                    timeout=poll + 30)
            changed = nxt["state"] != job["state"] or nxt.get("progress") != job.get("progress")
            if changed and on_progress:
                on_progress(nxt)
            job = nxt
        if raise_on_failure and job["state"] != "released":
            raise JobFailed(job)
        return job

    def result(self, job_id: str, box_key: BoxKey | str | bytes | None = None, wait: float = 60.0) -> dict[str, Any]:
        """The released outputs (numpy arrays restored) and the list of what was revealed.

        A job sealed to this analyst (its contract entry has a ``box_key``) has no outputs at any
        node: the node hands over every party's sealed shares, and they are opened here with
        ``box_key`` (the private half; default: the client's), reconstructed and post-processed
        (:func:`tessera.jobs.sealed.open_sealed`). Parties' shares still on their way to the
        node are waited for up to ``wait`` seconds."""
        res: dict[str, Any] = self.http.request("GET", f"/v1/jobs/{job_id}/result")
        if "sealed" not in res:
            res["outputs"] = jsonable.from_plain(res["outputs"])
            return res
        key = box_key if box_key is not None else self.box_key
        if key is None:
            raise SealedResultError(f"job {job_id}'s outputs are sealed to your box key; pass box_key (the private "
                                    "key whose public half the contract names)")
        deadline = time.monotonic() + wait
        while res["missing"] and time.monotonic() < deadline:
            time.sleep(0.5)
            res = self.http.request("GET", f"/v1/jobs/{job_id}/result")
        if res["missing"]:
            raise SealedResultError(f"the sealed shares of {', '.join(res['missing'])} have not reached the node "
                                    f"after {wait:g} s; every party's share is needed (try again later)")
        from tessera.jobs.sealed import open_sealed

        res["outputs"] = open_sealed(res["sealed"], key)
        return res

    def cancel(self, job_id: str, reason: str = "") -> dict[str, Any]:
        """Cancel the job (its analyst, or the coordinator's owner): withdrawn if it has not run,
        aborted at every party if it is running (the view says ``running`` until each node has
        ended its party process: follow it with :meth:`wait`); a job that has ended: HTTP 409."""
        return self.http.request("POST", f"/v1/jobs/{job_id}/cancel", {"reason": reason})  # type: ignore[no-any-return]

    def node(self) -> dict[str, Any]:
        return self.http.request("GET", "/v1/node")  # type: ignore[no-any-return]

    def budget(self) -> list[dict[str, Any]]:
        return self.http.request("GET", "/v1/budget")["datasets"]  # type: ignore[no-any-return]

    # -- the node's owner ----------------------------------------------------------------------

    def approve(self, job_id: str) -> dict[str, Any]:
        return self.http.request("POST", f"/v1/jobs/{job_id}/approve", {})  # type: ignore[no-any-return]

    def reject(self, job_id: str, reason: str = "") -> dict[str, Any]:
        return self.http.request("POST", f"/v1/jobs/{job_id}/reject", {"reason": reason})  # type: ignore[no-any-return]

    def audit(self) -> dict[str, Any]:
        return self.http.request("GET", "/v1/audit")  # type: ignore[no-any-return]

    def health(self) -> dict[str, Any]:
        """The node's status; a degraded node (503) answers with its ``problems`` too."""
        return self.http.request("GET", "/health", accept=(503,))  # type: ignore[no-any-return]
