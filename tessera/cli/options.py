"""Options shared by the commands that print results (defined apart so a command's module
loads them without the result formatting and its imports)."""

from __future__ import annotations

import typer

__all__ = ["JSON_OPTION", "PLOT_OPTION"]

JSON_OPTION = typer.Option(False, "--json", help="Print the result as plain JSON (lists and numbers) for programs.")
PLOT_OPTION = typer.Option(None, "--plot", help="Also draw the result's plot to FILE (.png or .svg; needs "
                                                "`pip install tessera[plots]`).")
