"""Terminal output for the CLI (the only place that writes to the terminal directly)."""

from __future__ import annotations

import typer


def say(message: str, *, err: bool = False) -> None:
    typer.echo(message, err=err)
