"""``mutagen-actors sync ...`` (placeholders until synchronization sessions exist)."""

import click

from .placeholders import placeholder


@click.group("sync", invoke_without_command=True)
@click.pass_context
def sync(ctx):
    """Create and manage synchronization sessions."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _name, _help in (
    ("create", "Create and start a synchronization session."),
    ("list", "List synchronization sessions and their status."),
    ("monitor", "Show the status of synchronization sessions as it changes."),
    ("flush", "Force a synchronization cycle."),
    ("pause", "Pause synchronization sessions."),
    ("resume", "Resume paused or halted synchronization sessions."),
    ("reset", "Reset the synchronization history of sessions."),
    ("terminate", "Terminate synchronization sessions."),
):
    placeholder(sync, _name, _help)
