"""``tessera schema``: draft a schema from data files, for the data owners to review."""

from __future__ import annotations

from pathlib import Path

import typer

from tessera.data.draft import draft

__all__ = ["app", "draft_command"]

app = typer.Typer(no_args_is_help=True, help="Draft schemas from data (the owners review them: bounds are public).")


@app.command("draft")
def draft_command(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False,
                                       help="CSV or Parquet files, e.g. one per party; the draft covers all."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Write the draft here (default: print it)."),
    max_levels: int = typer.Option(20, "--max-levels", help="Text columns with more distinct values are skipped."),
    exclude: list[str] = typer.Option([], "--exclude", help="A column to leave out (e.g. the join key); repeatable."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Propose a schema (types, nullability, levels, bounds widened to round numbers) under a DRAFT
    header: once in a contract its bounds and levels are public, so the owners must review it."""
    text = draft([str(f) for f in files], max_levels=max_levels, exclude=exclude).to_toml()
    if out is None:
        typer.echo(text, nl=False)
        return
    if out.exists() and not overwrite:
        typer.echo(f"error: {out} exists; pass --overwrite to replace it", err=True)
        raise typer.Exit(1)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote a DRAFT schema to {out}: review every bound and level before it goes into a contract",
               err=True)
