"""``tessera keys``: party identities."""

from __future__ import annotations

from pathlib import Path

import typer

from tessera.errors import TesseraError
from tessera.net.identity import Identity

app = typer.Typer(no_args_is_help=True, help="Create party identities (Ed25519 key + certificate).")


@app.command("new")
def new(
    party: str = typer.Option(..., "--party", help="Party name."),
    out: Path = typer.Option(..., "--out", help="Directory for NAME.key (0600) and NAME.crt."),
    overwrite: bool = typer.Option(False, help="Replace an existing identity."),
) -> None:
    """Create a signing key and self-signed certificate; print the fingerprint to pin."""
    try:
        ident = Identity.create(party, out, overwrite=overwrite)
    except TesseraError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"party:       {ident.name}")
    typer.echo(f"certificate: {ident.cert_path}")
    typer.echo(f"fingerprint: {ident.fingerprint}")
    typer.echo(f"public key:  {ident.public_key}")
