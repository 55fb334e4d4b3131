"""``tessera contract``: create, show, sign and verify collaboration contracts."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from tessera.errors import TesseraError
from tessera.governance.contract import Contract, PartySpec
from tessera.net.identity import Identity
from tessera.node.setup import party_entry

app = typer.Typer(no_args_is_help=True, help="Collaboration contracts: init, show, sign, verify.")
console = Console()


def _fail(e: Exception) -> None:
    console.print(f"[red]error:[/red] {e}")
    raise typer.Exit(1)


@app.command("init")
def init(
    out: Path = typer.Option(..., "--out", help="Contract file to write (TOML)."),
    contract_id: str = typer.Option(..., "--id", help="Contract identifier."),
    party: list[str] = typer.Option([], "--party", help="NAME=HOST:PORT=IDENTITY_DIR (repeat); =dealer marks a dealer"),
    node: list[Path] = typer.Option([], "--node", help="A node directory from `tessera node init` (repeat)."),
    terms: Path = typer.Option(None, "--terms", exists=True,
                               help="TOML with datasets, analyses, analysts, budgets and leakage rules."),
    analyst: list[str] = typer.Option([], "--analyst", help="Analyst id allowed to submit jobs (repeat)."),
    days: int = typer.Option(365, "--days", help="Validity period from today."),
    title: str = typer.Option("", "--title"),
) -> None:
    """Write a contract template with the parties' pinned fingerprints and public keys."""
    parties = []
    for spec in party:
        fields = spec.split("=")
        if len(fields) not in (3, 4):
            raise typer.BadParameter(f"--party needs NAME=HOST:PORT=IDENTITY_DIR, got {spec!r}")
        name, address, directory = fields[:3]
        try:
            ident = Identity.load(directory, name)
        except TesseraError as e:
            _fail(e)
        parties.append(PartySpec(name=name, address=address, fingerprint=ident.fingerprint,
                                 public_key=ident.public_key, role="dealer" if len(fields) == 4 else "party"))
    for node_dir in node:
        try:
            parties.append(party_entry(node_dir))
        except (TesseraError, OSError, ValueError) as e:
            _fail(e)
    extra: dict[str, Any] = {}
    if terms is not None:
        try:
            extra = tomllib.loads(terms.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            _fail(ValueError(f"{terms} is not valid TOML: {e}"))
    extra.setdefault("analysts", [])
    extra["analysts"] = [*extra["analysts"], *({"id": a} for a in analyst)]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        c = Contract.model_validate({"contract_id": contract_id, "title": title, "not_before": now,
                                     "not_after": now + dt.timedelta(days=days),
                                     "parties": [p.model_dump() for p in parties], **extra})
    except ValueError as e:
        _fail(e)
    c.save(out)
    console.print(f"wrote {out} (hash {c.hash[:16]}...); add datasets, analyses and budgets, then every party signs")


@app.command("show")
def show(path: Path = typer.Argument(..., help="Contract file.")) -> None:
    """Print the contract, its hash and the state of every signature."""
    try:
        c = Contract.load(path)
    except TesseraError as e:
        _fail(e)
    console.print(f"[bold]{c.contract_id}[/bold] {c.title}  hash {c.hash}")
    console.print(f"valid {c.not_before.isoformat()} .. {c.not_after.isoformat()}")
    t = Table("party", "role", "address", "fingerprint", "signed")
    signed = {s.party for s in c.signatures}
    for p in c.parties:
        t.add_row(p.name, p.role, p.address, p.fingerprint[:23] + "...", "yes" if p.name in signed else "no")
    console.print(t)
    for d in c.datasets:
        console.print(f"dataset {d.name} (owner {d.owner}): columns {', '.join(d.schema_.names)}")
    for r in c.analyses:
        console.print(f"analysis {r.name} {r.versions} on {r.datasets} -> {r.recipients}")
    problems = c.problems()
    console.print("[green]in force[/green]" if not problems else "[red]not in force:[/red] " + "; ".join(problems))


@app.command("sign")
def sign(
    path: Path = typer.Argument(...),
    identity_dir: Path = typer.Option(..., "--identity-dir"),
    party: str = typer.Option(..., "--party"),
) -> None:
    """Sign the contract's canonical encoding with PARTY's key (replacing its old signature)."""
    try:
        c = Contract.load(path).signed_by(Identity.load(identity_dir, party))
    except TesseraError as e:
        _fail(e)
    c.save(path)
    console.print(f"{party} signed {c.contract_id} (hash {c.hash[:16]}...)")


@app.command("verify")
def verify(path: Path = typer.Argument(...)) -> None:
    """Exit 0 only if every party's signature verifies and the contract is valid now."""
    try:
        c = Contract.load(path)
    except TesseraError as e:
        _fail(e)
    problems = c.problems()
    if problems:
        for p in problems:
            console.print(f"[red]-[/red] {p}")
        raise typer.Exit(1)
    console.print(f"[green]contract {c.contract_id} is in force[/green] (hash {c.hash})")
