"""The ``tessera`` command: each group of subcommands lives in its own module."""

from __future__ import annotations

import typer

from tessera.cli import analyses, audit, bench, cluster, contract, demo, job, keys, node, party

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Tessera: secure multi-party analytics.")
app.add_typer(keys.app, name="keys")
app.add_typer(party.app, name="party")
app.add_typer(cluster.app, name="cluster")
app.add_typer(contract.app, name="contract")
app.add_typer(audit.app, name="audit")
app.add_typer(node.app, name="node")
app.add_typer(job.app, name="job")
app.command("bench")(bench.bench)
app.command("demo")(demo.demo)
app.command("run")(analyses.run)
app.command("explain")(analyses.explain)
