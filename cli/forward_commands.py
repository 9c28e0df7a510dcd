"""``mutagen-actors forward ...`` (placeholders until forwarding sessions exist)."""

import click

from .placeholders import placeholder


@click.group("forward", invoke_without_command=True)
@click.pass_context
def forward(ctx):
    """Create and manage forwarding sessions."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _name, _help in (
    ("create", "Create and start a forwarding session."),
    ("list", "List forwarding sessions and their status."),
    ("monitor", "Show the status of forwarding sessions as it changes."),
    ("pause", "Pause forwarding sessions."),
    ("resume", "Resume paused forwarding sessions."),
    ("terminate", "Terminate forwarding sessions."),
):
    placeholder(forward, _name, _help)
