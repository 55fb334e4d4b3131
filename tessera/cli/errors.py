"""How the CLI reports an error: one line, ``error: ...``, on stderr."""

from __future__ import annotations

import typer

__all__ = ["one_line", "fail"]


def one_line(e: BaseException | str) -> str:
    """``error: <message>`` on one line (a message's line breaks become ``; ``)."""
    text = "; ".join(part.strip() for part in str(e).splitlines() if part.strip())
    return f"error: {text or type(e).__name__}"


def fail(e: BaseException | str, code: int = 1) -> typer.Exit:
    """Print ``e`` as one line on stderr; returns the Exit to raise (``raise fail(e) from None``)."""
    typer.echo(one_line(e), err=True)
    return typer.Exit(code)
