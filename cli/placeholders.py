"""Commands whose names are fixed (Mutagen's CLI surface) but whose work lands in a later issue.
Each says so on stderr and exits 1."""

from __future__ import annotations

import click

from .errors import CliError


def placeholder(group: click.Group, name: str, help_text: str) -> None:
    @group.command(name, help=help_text, context_settings={"ignore_unknown_options": True})
    @click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
    def command(arguments):
        raise CliError(f"`{group.name} {name}` is not implemented yet")
