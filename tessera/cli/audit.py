"""``tessera audit``: verify a node's audit log, compare transcripts across parties."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from tessera.errors import TesseraError
from tessera.governance.audit import VerifyReport, compare_logs, read_jsonl, verify_entries
from tessera.governance.contract import Contract

app = typer.Typer(no_args_is_help=True, help="Audit logs: verify chains and signatures, compare transcripts.")
console = Console()


@app.command("verify")
def verify(
    log: Path = typer.Argument(..., help="Exported audit log (JSON lines)."),
    public_key: str = typer.Option(None, "--public-key", help="The node's Ed25519 public key (hex)."),
    contract: Path = typer.Option(None, "--contract", help="Take the key of --party from this contract."),
    party: str = typer.Option(None, "--party"),
    head: str = typer.Option(None, "--head", help="The head hash recorded elsewhere (detects a cut-off end)."),
) -> None:
    """Check the hash chain and every signature; name the first bad entry."""
    if public_key is None:
        if contract is None or party is None:
            raise typer.BadParameter("give --public-key, or --contract and --party")
        try:
            public_key = Contract.load(contract).party(party).public_key
        except TesseraError as e:
            console.print(f"[red]error:[/red] {e}")
            raise typer.Exit(1) from None
    entries = read_jsonl(log)
    report = entries if isinstance(entries, VerifyReport) else verify_entries(entries, public_key, head)
    if not report.ok:
        console.print(f"[red]audit log does not verify:[/red] {report.reason} (first bad entry: {report.first_bad})")
        raise typer.Exit(1)
    console.print(f"[green]{report.entries} entries verify[/green]; head {report.head}")


@app.command("compare")
def compare(logs: list[str] = typer.Argument(..., help="PARTY=LOG.jsonl for every party.")) -> None:
    """Check that every party recorded the same transcript hash for each job."""
    parsed = {}
    for item in logs:
        party, _, path = item.partition("=")
        entries = read_jsonl(path)
        if isinstance(entries, VerifyReport):
            console.print(f"[red]{party}: {entries.reason}[/red]")
            raise typer.Exit(1)
        parsed[party] = entries
    problems = compare_logs(parsed)
    for p in problems:
        console.print(f"[red]-[/red] {p}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]all parties recorded the same transcripts[/green]")
