"""``mutagen-actors forward ...``: create, list, monitor, pause, resume, terminate (mirrors
``sync_commands``; the shared lifecycle plumbing is in ``session_commands``).

Every command validates its input first (``forward_arguments``; bad input never reaches, or
starts, the daemon), then talks to the daemon through ``client`` with a deadline per request.
Failures end in the one error path (``CliError``: one line on stderr, exit 1).

Commands acting on existing sessions resolve the selection with one ``ForwardList`` (so a
specification that matches nothing fails before anything changes), then act on each session in
creation order, showing Mutagen's prompt (``Pausing session <id>...``) on a status line on
stderr (stdout keeps only results).
"""

from __future__ import annotations

import click

from mutagen_actors.wire.messages import forward as messages

from . import output
from .errors import CliError
from .session_commands import (
    act,
    checked_selection,
    create_options,
    create_session,
    list_options,
    monitor_options,
    show_list,
    show_monitor,
    side_options,
)
from .session_commands import selection_options as _selection_options

# The daemon bounds its own waits (a remote forwarder: 90 s to listen, then stopping a failed
# one); the CLI waits longer, so it always prints the daemon's answer, never a guess.
CREATE_TIMEOUT = 120.0  # the daemon starts the forwarder and waits until it listens
CONTROL_TIMEOUT = 120.0  # pause, resume (waits for the listener again), terminate


@click.group("forward", invoke_without_command=True)
@click.pass_context
def forward(ctx):
    """Create and manage forwarding sessions."""
    if ctx.invoked_subcommand is None:
        output.say(ctx.get_help())


# ------------------------------------------------------------------------------------- create


def _socket_options(function):
    """``--socket-…``, ``--socket-…-source`` and ``--socket-…-destination``."""
    for base, help_text, metavar in reversed((
        ("socket-overwrite-mode", "Existing unix socket file: leave (fail) or overwrite",
         "MODE"),
        ("socket-owner", "Owner (name, number or id:N) of a unix socket", "OWNER"),
        ("socket-group", "Group (name, number or id:N) of a unix socket", "GROUP"),
        ("socket-permission-mode", "Mode (octal, default 0600) of a unix socket", "MODE"),
    )):
        function = side_options(function, base, help_text, metavar, ("source", "destination"))
    return function


@forward.command("create")
@click.argument("source")
@click.argument("destination")
@create_options
@_socket_options
def create(source, destination, **options):
    """Create and start a forwarding session: SOURCE listens, DESTINATION is dialed for each
    connection.

    Each is tcp:HOST:PORT, tcp4:…, tcp6:[ADDR]:PORT or unix:PATH, optionally behind
    [user@]host[:port]: (SSH) or docker://[user@]container: (Docker).
    """
    from . import forward_arguments  # configuration and endpoint parsing: only create needs them

    try:
        request = forward_arguments.build_create(
            {"source": source, "destination": destination, **options})
    except forward_arguments.ArgumentError as error:
        raise CliError(str(error)) from None
    create_session(request, CREATE_TIMEOUT)


# --------------------------------------------------------------------------------------- list


@forward.command("list")
@list_options
def list_(sessions, long, as_json, label_selector):
    """List forwarding sessions and their status."""
    from . import forward_output  # here, not at the top: other commands start faster

    show_list(messages.ForwardList, forward_output, sessions, label_selector, long, as_json)


# ------------------------------------------------------------------------------------ monitor


@forward.command("monitor")
@monitor_options
def monitor(sessions, long, label_selector):
    """Show the status of the most recently created matching session as it changes (Ctrl-C ends)."""
    from . import forward_output

    show_monitor(messages.ForwardList, forward_output, sessions, label_selector, long)


# -------------------------------------------------------------------------- session commands


def _act(sessions, label_selector, all_, prompt: str, make_request, timeout: float,
         prompts: bool = False) -> None:
    """Resolve the selection, then send ``make_request(single selection)`` for each session."""
    act(checked_selection(sessions, label_selector, all_), messages.ForwardList, prompt, make_request,
        timeout, prompts=prompts)


@forward.command("pause")
@_selection_options
def pause(sessions, all_, label_selector):
    """Pause forwarding sessions (their listeners are closed)."""
    _act(sessions, label_selector, all_, "Pausing session {}...",
         lambda chosen: messages.ForwardPause(selection=chosen), CONTROL_TIMEOUT)


@forward.command("resume")
@_selection_options
def resume(sessions, all_, label_selector):
    """Resume paused or halted forwarding sessions."""
    _act(sessions, label_selector, all_, "Resuming session {}...",
         lambda chosen: messages.ForwardResume(selection=chosen), CONTROL_TIMEOUT, prompts=True)


@forward.command("terminate")
@_selection_options
def terminate(sessions, all_, label_selector):
    """Terminate forwarding sessions."""
    _act(sessions, label_selector, all_, "Terminating session {}...",
         lambda chosen: messages.ForwardTerminate(selection=chosen), CONTROL_TIMEOUT)
