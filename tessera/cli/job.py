"""``tessera job``: submit and follow jobs at a node (analysts), approve or reject them (owners)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from tessera.errors import TesseraError
from tessera.node.client import Client
from tessera.runtime.jsonable import to_plain

app = typer.Typer(no_args_is_help=True, help="Submit, follow and decide on jobs at a node.")

_PROFILE = typer.Option(None, "--profile", "-p", envvar="TESSERA_PROFILE",
                        help="Access profile (url, fingerprint, token) from `tessera node add-analyst`.")


def _client(profile: Path | None) -> Client:
    if profile is None:
        typer.echo("error: give --profile FILE or set TESSERA_PROFILE", err=True)
        raise typer.Exit(2)
    try:
        return Client.from_profile(profile)
    except TesseraError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _out(obj: Any) -> None:
    typer.echo(json.dumps(to_plain(obj), indent=2))


def _call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return fn(*args, **kw)
    except TesseraError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def _line(job: dict[str, Any]) -> str:
    p = job.get("progress") or {}
    reasons = ("; " + "; ".join(job["reasons"])) if job.get("reasons") else ""
    return f"{job['id']}  {job['state']:<17} {p.get('detail', '')}{reasons}"


@app.command("submit")
def submit(
    job_file: Path = typer.Argument(..., exists=True, help="Job as TOML (analysis, version, datasets, columns, ...)."),
    key: str = typer.Option(None, "--idempotency-key", help="Same key, same job: it runs once."),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it ends."),
    profile: Path = _PROFILE,
) -> None:
    """Submit a job; prints its id (and follows it with --wait)."""
    c = _client(profile)
    job = _call(c.submit, job_file, idempotency_key=key)
    typer.echo(job["id"])
    if wait:
        final = _call(c.wait, job["id"], on_progress=lambda j: typer.echo(_line(j), err=True))
        if final["state"] != "released":
            raise typer.Exit(1)


@app.command("status")
def status(job_id: str, profile: Path = _PROFILE) -> None:
    """Print the job's view (state, decisions, events, plan, what it reveals)."""
    _out(_call(_client(profile).status, job_id))


@app.command("wait")
def wait(job_id: str, timeout: float = typer.Option(900.0, "--timeout"), profile: Path = _PROFILE) -> None:
    """Follow the job until it ends; exit 0 only if it was released."""
    final = _call(_client(profile).wait, job_id, timeout=timeout, on_progress=lambda j: typer.echo(_line(j)))
    if final["state"] != "released":
        raise typer.Exit(1)


@app.command("result")
def result(job_id: str, profile: Path = _PROFILE) -> None:
    """Print the released outputs as JSON."""
    _out(_call(_client(profile).result, job_id))


@app.command("list")
def list_(profile: Path = _PROFILE) -> None:
    """List the jobs this profile may see, newest first."""
    for job in _call(_client(profile).jobs):
        typer.echo(f"{_line(job)}  [{job['analysis']} by {job['analyst']}]")


@app.command("approve")
def approve(job_id: str, profile: Path = _PROFILE) -> None:
    """The node's owner accepts a job waiting for its approval (admin profile)."""
    typer.echo(_line(_call(_client(profile).approve, job_id)))


@app.command("reject")
def reject(job_id: str, reason: str = typer.Option("", "--reason"), profile: Path = _PROFILE) -> None:
    """The node's owner rejects a job waiting for its approval (admin profile)."""
    typer.echo(_line(_call(_client(profile).reject, job_id, reason)))
