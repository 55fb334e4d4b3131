"""``tessera audit``: verify a node's audit log (its ``audit.db`` or an export), export it as JSON
lines, compare transcripts across parties."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from tessera.errors import TesseraError
from tessera.governance.audit import (
    Entry,
    VerifyReport,
    compare_logs,
    not_parties,
    read_db,
    read_jsonl,
    verify_entries,
)
from tessera.governance.contract import Contract
from tessera.net.identity import Identity
from tessera.node.config import NodeConfig

app = typer.Typer(no_args_is_help=True, help="Audit logs: verify chains and signatures, compare transcripts.")
console = Console()


SQLITE_MAGIC = b"SQLite format 3\x00"


def read_log(path: Path) -> list[Entry] | VerifyReport:
    """The entries of a node's ``audit.db`` (read-only) or of an exported log (JSON lines),
    told apart by the file's first bytes; a bad entry gives a failed report naming it."""
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        return VerifyReport(False, 0, None, f"cannot read {path}: {e.strerror}")
    return read_db(path) if head == SQLITE_MAGIC else read_jsonl(path)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


@app.command("verify")
def verify(
    log: Path = typer.Argument(..., help="A node's audit.db, or an exported audit log (JSON lines)."),
    public_key: str = typer.Option(None, "--public-key", help="The node's Ed25519 public key (hex)."),
    contract: Path = typer.Option(None, "--contract", help="Take the key of --party from this contract."),
    party: str = typer.Option(None, "--party"),
    node: Path = typer.Option(None, "--node", help="Take the key from this node directory (or its node.toml)."),
    head: str = typer.Option(None, "--head", help="The head hash recorded elsewhere (detects a cut-off end)."),
) -> None:
    """Check the hash chain and every signature; name the first bad entry."""
    try:
        if public_key is None and node is not None:
            cfg = NodeConfig.load(node / "node.toml" if node.is_dir() else node)
            public_key = Identity.load(cfg.path(cfg.identity_dir), cfg.name).public_key
        elif public_key is None:
            if contract is None or party is None:
                raise typer.BadParameter("give --public-key, --node, or --contract and --party")
            public_key = Contract.load(contract).party(party).public_key
    except TesseraError as e:
        raise _fail(str(e)) from None
    entries = read_log(log)
    report = entries if isinstance(entries, VerifyReport) else verify_entries(entries, public_key, head)
    if not report.ok:
        console.print(f"[red]audit log does not verify:[/red] {report.reason} (first bad entry: {report.first_bad})")
        raise typer.Exit(1)
    console.print(f"[green]{report.entries} entries verify[/green]; head {report.head}")


@app.command("export")
def export(
    log: Path = typer.Argument(..., help="A node's audit.db (opened read-only)."),
    out: Path = typer.Option(None, "--out", help="Write the JSON lines here (default: standard output)."),
) -> None:
    """Export a node's audit log as JSON lines (what ``verify`` and ``compare`` read)."""
    entries = read_log(log)
    if isinstance(entries, VerifyReport):
        raise _fail(f"{log}: {entries.reason}")
    text = "".join(e.as_json() + "\n" for e in entries)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"{len(entries)} entries written to {out}")


@app.command("compare")
def compare(logs: list[str] = typer.Argument(..., help="PARTY=LOG.jsonl for every party.")) -> None:
    """Check that every party recorded the same transcript hash for each job."""
    parsed = {}
    for item in logs:
        party, _, path = item.partition("=")
        entries = read_log(Path(path))
        if isinstance(entries, VerifyReport):
            console.print(f"[red]{party}: {entries.reason}[/red]")
            raise typer.Exit(1)
        parsed[party] = entries
    problems = compare_logs(parsed)
    for job, absent in not_parties(parsed).items():
        console.print(f"note: {', '.join(absent)} {'was' if len(absent) == 1 else 'were'} not a party to job {job} "
                      "(no entry for it in the log): not compared for it", markup=False, highlight=False)
    for p in problems:
        console.print(f"[red]-[/red] {p}")
    if problems:
        raise typer.Exit(1)
    if not any(e.kind == "transcript_hash" for es in parsed.values() for e in es):
        console.print("no transcript hashes in these logs: no job to compare")
        return
    console.print("[green]all parties recorded the same transcripts[/green]")
