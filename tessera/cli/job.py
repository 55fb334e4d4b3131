"""``tessera job``: submit and follow jobs at a node (analysts), approve or reject them (owners).

``status`` and ``list`` print short, readable summaries; ``--json`` prints the node's full view
for programs. ``wait`` and ``submit --wait`` show a progress bar on stderr. ``cancel`` withdraws
a job that has not run, or aborts a running one at every party.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import typer

from tessera.cli.errors import fail
from tessera.cli.options import JSON_OPTION, PLOT_OPTION
from tessera.errors import TesseraError
from tessera.node.client import Client
from tessera.runtime.jsonable import to_plain

from .progress import JobProgress

app = typer.Typer(no_args_is_help=True, help="Submit, follow and decide on jobs at a node.")

_PROFILE = typer.Option(None, "--profile", "-p", envvar="TESSERA_PROFILE",
                        help="Access profile (url, fingerprint, token) from `tessera node add-analyst`.")
_JSON = typer.Option(False, "--json", help="The node's full view of the job, as JSON (for programs).")


def _client(profile: Path | None) -> Client:
    if profile is None:
        typer.echo("error: give --profile FILE or set TESSERA_PROFILE", err=True)
        raise typer.Exit(2)
    try:
        return Client.from_profile(profile)
    except TesseraError as e:
        raise fail(e, 2) from None


def _out(obj: Any) -> None:
    typer.echo(json.dumps(to_plain(obj), indent=2))


def _call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except (TesseraError, TimeoutError) as e:
        raise fail(e) from None


def _line(job: dict[str, Any]) -> str:
    p = job.get("progress") or {}
    reasons = ("; " + "; ".join(job["reasons"])) if job.get("reasons") else ""
    return f"{job['id']}  {job['state']:<17} {p.get('detail', '')}{reasons}"


def _job_file(path: Path) -> dict[str, Any]:
    try:
        return dict(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise fail(f"cannot read the job {path}: {e}") from None


def when(iso: str | None) -> str:
    """An API time (ISO 8601 with its offset) as ``2026-12-01 14:53:05 UTC`` (or ``UTC+01:00``)."""
    if not iso:
        return "-"
    try:
        t = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    off = t.utcoffset()
    if off is None:
        return t.strftime("%Y-%m-%d %H:%M:%S")
    minutes = int(off.total_seconds() // 60)
    zone = "UTC" if minutes == 0 else f"UTC{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{t.strftime('%Y-%m-%d %H:%M:%S')} {zone}"


def summary(job: dict[str, Any]) -> str:
    """A job's view (``GET /v1/jobs/ID``) as a few readable lines: what it is, where it stands,
    each party's decision, why it ended so (if it did not release), and what it reveals."""
    p = job.get("progress") or {}
    frac = p.get("fraction")
    detail = p.get("detail") if p.get("detail") != job["state"] else ""
    where = f"{job['state']}" + (f" ({frac:.0%})" if isinstance(frac, (int, float)) and job["state"] == "running"
                                 else "") + (f": {detail}" if detail else "")
    lines = [
        f"job        {job['id']}",
        f"analysis   {job['analysis']} v{job['version']} ({job.get('partition', 'horizontal')}, "
        f"{job.get('protocol') or 'default protocol'})",
        f"datasets   {', '.join(job.get('datasets') or [])}",
        f"analyst    {job.get('analyst')}; recipients: {', '.join(job.get('recipients') or []) or '-'}",
        f"state      {where}",
        f"created    {when(job.get('created'))}; updated {when(job.get('updated'))}",
    ]
    if job.get("dp"):
        lines.append(f"dp         epsilon {job['dp'].get('epsilon')}, delta {job['dp'].get('delta')}")
    decisions = job.get("decisions") or {}
    if decisions:
        lines.append("decisions  " + "; ".join(
            f"{party}: {d.get('state')}" + (f" ({', '.join(d['reasons'])})" if d.get("reasons") else "")
            for party, d in decisions.items()))
    for r in job.get("reasons") or []:
        lines.append(f"reason     {r}")
    for item in job.get("revealed") or []:
        lines.append(f"reveals    {item}")
    if job.get("seconds") is not None:
        lines.append(f"ran        {job['seconds']:.1f} s")
    if job.get("has_result"):
        lines.append(f"result     `tessera job result {job['id']}`")
    elif job["state"] not in ("released", "denied", "failed", "aborted", "cancelled", "contributed"):
        lines.append(f"follow     `tessera job wait {job['id']}`; withdraw it: `tessera job cancel {job['id']}`")
    return "\n".join(lines)


@app.command("submit")
def submit(
    job_file: Path = typer.Argument(..., exists=True, help="Job as TOML (analysis, version, datasets, columns, ...)."),
    key: str = typer.Option(None, "--idempotency-key", help="Same key, same job: it runs once."),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it ends."),
    profile: Path = _PROFILE,
) -> None:
    """Submit a job; prints its id, alone on stdout (with --wait it follows the job, its progress
    and final state on stderr, and exits 0 only if the job was released)."""
    c = _client(profile)
    job = _call(c.submit, _job_file(job_file), idempotency_key=key)
    typer.echo(job["id"])
    if wait:
        with JobProgress(f"job {job['id'][:8]}") as bar:
            final = _call(c.wait, job["id"], on_progress=bar.job)
        _ended(final, err=True)


@app.command("status")
def status(job_id: str, as_json: bool = _JSON, profile: Path = _PROFILE) -> None:
    """Print a summary of the job: what it is, its state, each party's decision, why it ended
    (if it did not release) and what it reveals (--json: the node's full view)."""
    job = _call(_client(profile).status, job_id)
    if as_json:
        _out(job)
    else:
        typer.echo(summary(job))


@app.command("wait")
def wait(job_id: str, timeout: float = typer.Option(900.0, "--timeout"), profile: Path = _PROFILE) -> None:
    """Follow the job until it ends, with a progress bar on stderr (its stage and fraction; one
    line per stage when stderr is not a terminal); prints the final state, and exits 0 only if
    the job was released (or, at a data owner that only inputs, ``contributed``: its shares were sent)."""
    with JobProgress(f"job {job_id[:8]}") as bar:
        final = _call(_client(profile).wait, job_id, timeout=timeout, on_progress=bar.job)
    _ended(final)


def _ended(final: dict[str, Any], err: bool = False) -> None:
    """The final state of a followed job on stdout (``err``: on stderr, where ``submit --wait``
    keeps it so that stdout holds the job id alone); reasons included; exit 1 unless released
    (or contributed: an input-only owner's part is done)."""
    typer.echo(_line(final), err=err)
    if final["state"] not in ("released", "contributed"):
        raise typer.Exit(1)


@app.command("result")
def result(job_id: str, as_json: bool = JSON_OPTION, plot: Path = PLOT_OPTION, profile: Path = _PROFILE) -> None:
    """Print the released result as tables (--json: plain JSON; --plot FILE: its plot)."""
    from tessera import analytics  # the analyses and the result tables load only for a result
    from tessera.cli.show import show_result

    c = _client(profile)
    job = _call(c.status, job_id)
    got = _call(c.result, job_id)
    res = _call(analytics.get(job["analysis"], job["version"]).result, got["outputs"], job.get("params") or {},
                plan_text=job.get("plan") or "", revealed=got.get("revealed") or job.get("revealed") or [])
    show_result(res, as_json, plot, {"job_id": job_id})


_LIST_HEADER = ("ID", "STATE", "ANALYSIS", "ANALYST", "UPDATED", "DETAIL")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="The node's views of the jobs, as JSON."),
          profile: Path = _PROFILE) -> None:
    """List the jobs this profile may see, newest first: one line each under a header."""
    jobs = _call(_client(profile).jobs)
    if as_json:
        _out(jobs)
        return
    rows = [_LIST_HEADER]
    for job in jobs:
        p = job.get("progress") or {}
        detail = "; ".join(job.get("reasons") or []) or p.get("detail", "")
        rows.append((job["id"], job["state"], f"{job['analysis']} v{job['version']}", str(job.get("analyst")),
                     when(job.get("updated")), detail))
    widths = [max(len(r[i]) for r in rows) for i in range(len(_LIST_HEADER) - 1)]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1])
    if not jobs:
        typer.echo("(no jobs)")


def decided(job: dict[str, Any], node: str, accepted: bool) -> str:
    """What an owner's approve or reject did, in one line: this node's decision, and where the job
    stands (the parties still to decide, or that it will run / was denied everywhere)."""
    verb = "approved" if accepted else "rejected"
    waiting = [p for p, d in (job.get("decisions") or {}).items() if d.get("state") == "awaiting_approval"]
    state = job["state"]
    if not accepted:
        then = "the job is denied at every party"
    elif state in ("running", "released"):
        then = f"the job is {state}"
    elif waiting:
        then = f"the job waits for the approval of {', '.join(waiting)}"
    elif job.get("coordinator") and job["coordinator"] != node:
        then = f"the coordinator {job['coordinator']} was told; the job runs once every party has accepted"
    else:
        then = "the job runs once every party has accepted"
    return f"{verb} job {job['id']} at {node}: {then}"


@app.command("approve")
def approve(job_id: str, profile: Path = _PROFILE) -> None:
    """The node's owner accepts a job waiting for its approval (admin profile)."""
    c = _client(profile)
    job = _call(c.approve, job_id)
    typer.echo(decided(job, _call(c.node)["name"], True))


@app.command("reject")
def reject(job_id: str, reason: str = typer.Option("", "--reason"), profile: Path = _PROFILE) -> None:
    """The node's owner rejects a job waiting for its approval (admin profile)."""
    c = _client(profile)
    job = _call(c.reject, job_id, reason)
    typer.echo(decided(job, _call(c.node)["name"], False))


@app.command("cancel")
def cancel(job_id: str, reason: str = typer.Option("", "--reason", help="Why (audited; shown to the parties)."),
           timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for a running job to stop."),
           profile: Path = _PROFILE) -> None:
    """Cancel a job (its analyst, or the coordinator's owner): a job that has not run is
    withdrawn; a running one is aborted at every party (waits until it has stopped). A job that
    has ended cannot be cancelled."""
    c = _client(profile)
    job = _call(c.cancel, job_id, reason)
    if job["state"] == "running":
        typer.echo(f"stopping job {job_id} at every party ...", err=True)
        job = _call(c.wait, job_id, timeout=timeout)
    why = "; ".join(job.get("reasons") or [])
    typer.echo(f"{job['state']}: job {job_id}" + (f" ({why})" if why else ""))
