"""How every command stops on an error: one line on stderr, ``error: REASON``, and an exit
code that tells scripts which kind it was."""

from __future__ import annotations

from typing import NoReturn

import typer

FAILED = 1  # what the command tried failed: the platform refused, or could not be reached
UNUSABLE = 2  # the command cannot run as given: a bad option, file or configuration


def fail(message: str, code: int = FAILED) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def unusable(message: str) -> NoReturn:
    """The command cannot run as given (exit 2)."""
    fail(message, UNUSABLE)
