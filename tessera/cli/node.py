"""``tessera node``: set up and run an organisation's node."""

from __future__ import annotations

from pathlib import Path

import typer

from tessera.errors import TesseraError
from tessera.node.setup import CONFIG_FILE, add_analyst, init_node, party_entry

app = typer.Typer(no_args_is_help=True, help="Set up and run a node (HTTPS API, jobs, MPC endpoint).")


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(1)


def _ports(text: str) -> tuple[int, int]:
    lo, sep, hi = text.partition("-")
    try:
        return (int(lo), int(hi or lo)) if sep or lo else (0, 0)
    except ValueError:
        raise typer.BadParameter(f"--mpc-ports needs FIRST-LAST, got {text!r}") from None


@app.command("init")
def init(
    directory: Path = typer.Argument(..., help="Node directory to create."),
    name: str = typer.Option(..., "--name", help="This party's name in the contract."),
    api_port: int = typer.Option(..., "--api-port", help="Port of the HTTPS API."),
    mpc_ports: str = typer.Option(..., "--mpc-ports", help="FIRST-LAST ports for per-job MPC listeners."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address the node listens on and peers reach."),
    dealer: bool = typer.Option(False, "--dealer", help="This node is the semi2k dealer (holds no data)."),
    role: str = typer.Option("party", "--role",
                             help="party (owns data and computes), owner (owns data, only inputs: sends its shares "
                                  "and is done), compute (computes, owns no data) or both; --dealer: dealer."),
    dataset: list[str] = typer.Option([], "--dataset", help="NAME=FILE (CSV or Parquet), repeat."),
    dataset_sql: list[str] = typer.Option([], "--dataset-sql",
                                          help="NAME=QUERY over tables given with --table, repeat."),
    table: list[str] = typer.Option([], "--table", help="TABLE=FILE for SQL datasets, repeat."),
    approval: str = typer.Option("auto", "--approval", help="auto, or manual (the owner approves every job)."),
) -> None:
    """Create a node: identity, API certificate, node.toml, party.toml (its contract entry) and
    admin.toml (the owner's access profile, printed token shown once)."""
    roles = ("party", "owner", "compute", "both")
    if role not in roles:
        raise typer.BadParameter(f"--role is one of {', '.join(roles)}, not {role!r}")
    if dealer and role != "party":
        raise typer.BadParameter("--dealer is a role of its own: give --dealer or --role, not both")
    datasets: dict[str, dict[str, object]] = {}
    tables = dict(t.split("=", 1) for t in table if "=" in t)
    for item in dataset:
        n, sep, f = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--dataset needs NAME=FILE, got {item!r}")
        datasets[n] = {"path": str(Path(f).resolve())}
    for item in dataset_sql:
        n, sep, q = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--dataset-sql needs NAME=QUERY, got {item!r}")
        datasets[n] = {"sql": q, "tables": {k: str(Path(v).resolve()) for k, v in tables.items()}}
    try:
        cfg, _ = init_node(directory, name, api_port=api_port, mpc_ports=_ports(mpc_ports), host=host,
                           role="dealer" if dealer else role, datasets=datasets, approval=approval)
    except (TesseraError, ValueError) as e:
        _fail(e)
    typer.echo(f"node {name} in {directory}: contract entry in {directory / 'party.toml'}, "
               f"owner profile in {directory / 'admin.toml'} (keep it private)")
    typer.echo(f"next: put the signed contract at {directory / cfg.contract}, then `tessera node start {directory}`")


@app.command("start")
def start(directory: Path = typer.Argument(..., help="Node directory (with node.toml).")) -> None:
    """Run the node until SIGTERM/SIGINT (then running jobs are aborted cleanly)."""
    from tessera.node.server import serve

    try:
        serve(directory / CONFIG_FILE if directory.is_dir() else directory)
    except TesseraError as e:
        _fail(e)


@app.command("add-analyst")
def analyst(
    directory: Path = typer.Argument(...),
    analyst_id: str = typer.Argument(..., help="Analyst id as named in the contract."),
    profile: Path = typer.Option(None, "--profile", help="Write an access profile for the analyst here."),
) -> None:
    """Issue an API token for an analyst (a running node accepts it at once)."""
    try:
        token = add_analyst(directory, analyst_id, profile)
    except TesseraError as e:
        _fail(e)
    if profile is not None:
        typer.echo(f"wrote {profile} for {analyst_id} (contains the token; hand it over privately)")
    else:
        typer.echo(token)


@app.command("entry")
def entry(directory: Path = typer.Argument(...)) -> None:
    """Print this node's contract entry (addresses, fingerprints, public key)."""
    try:
        typer.echo((directory / "party.toml").read_text())
        party_entry(directory)
    except (TesseraError, OSError) as e:
        _fail(e)


@app.command("example")
def example(
    directory: Path = typer.Argument(..., help="Where to write the example consortium."),
    rows: int = typer.Option(30_000, "--rows", help="Transactions in total across the three organisations."),
    data_only: bool = typer.Option(False, "--data-only", help="Only the data files and terms.toml."),
    base_port: int = typer.Option(18400, "--base-port", help="Node i listens on BASE + 40 i (MPC: the 32 after)."),
    hospitals: int = typer.Option(0, "--hospitals", min=0,
                                  help="Instead: N hospitals that only input (role owner) and three compute nodes "
                                       "c1-c3 (node i on BASE + 10 i, MPC the 8 after)."),
) -> None:
    """A local three-organisation consortium (alpha, beta, gamma + a dealer) with synthetic bank
    transactions and clinical trials: data and terms, or (default) also every node directory,
    the contract signed by all, and the analyst profile analyst-1.toml. With ``--hospitals N``:
    N hospitals' trials (``data/trial_hospital_NN.csv``) and the outsourced consortium's terms."""
    from tessera.node.example import build_consortium, build_hospitals, write_data, write_hospital_data

    if hospitals:
        if data_only:
            write_hospital_data(directory, hospitals)
            typer.echo(f"wrote {directory / 'data'} ({hospitals} hospitals) and {directory / 'terms.toml'}")
            return
        cons = build_hospitals(directory, hospitals=hospitals, base_port=base_port)
        typer.echo(f"consortium {cons.contract.contract_id} in {directory} (contract hash {cons.contract.hash[:16]}...)")
        typer.echo(f"start the {len(cons.nodes)} nodes with `tessera node start DIR`, then submit jobs as the analyst: "
                   f"tessera job submit JOB.toml --profile {cons.analyst_profile} --wait")
        return
    if data_only:
        write_data(directory, rows)
        typer.echo(f"wrote {directory / 'data'} and {directory / 'terms.toml'}")
        return
    cons = build_consortium(directory, rows=rows, base_port=base_port)
    typer.echo(f"consortium {cons.contract.contract_id} in {directory} (contract hash {cons.contract.hash[:16]}...)")
    typer.echo("start the nodes (one terminal each, or with & ):")
    for cmd in cons.start_commands():
        typer.echo(f"  {cmd}")
    typer.echo(f"then submit jobs as the analyst: tessera job submit JOB.toml --profile {cons.analyst_profile} --wait")
