"""``mutagen-actors sync ...``: create, list, monitor, flush, pause, resume, reset, terminate.

Every command validates its input first (``sync_arguments``; bad input never reaches, or
starts, the daemon), then talks to the daemon through ``client`` with a deadline per request.
Failures end in the one error path (``CliError``: one line on stderr, exit 1).

Commands acting on existing sessions resolve the selection with one ``SyncList`` (so a
specification that matches nothing fails before anything changes), then act on each session in
creation order, showing Mutagen's prompt (``Pausing session <id>...``) on a status line on
stderr (stdout keeps only results, for scripts): on a terminal it is rewritten in place and
cleared when done; otherwise each prompt is one line. The plumbing shared with ``forward``
commands is in ``session_commands``.
"""

from __future__ import annotations

import click

from mutagen_actors.wire.messages import sync as messages

from . import output
from .errors import CliError
from .session_commands import (
    LIST_TIMEOUT,
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
from .session_commands import StatusLine  # noqa: F401  (re-exported: tests and older imports)
from .session_commands import selection_options as _selection_options

CREATE_TIMEOUT = 120.0  # the daemon starts the session's actors and connects both endpoints
CONTROL_TIMEOUT = 60.0  # pause, resume, reset, terminate (per session)
FLUSH_TIMEOUT = 3600.0  # a flush waits for a whole cycle, which may transfer a big tree


@click.group("sync", invoke_without_command=True)
@click.pass_context
def sync(ctx):
    """Create and manage synchronization sessions."""
    if ctx.invoked_subcommand is None:
        output.say(ctx.get_help())


# ------------------------------------------------------------------------------------- create


def _create_options(function):
    for base, help_text, metavar in reversed((
        ("watch-mode", "Watch mode: portable, force-poll, no-watch", "MODE"),
        ("watch-polling-interval", "Polling interval in seconds", "SECONDS"),
        ("scan-mode", "Scan mode: accelerated, full", "MODE"),
        ("stage-mode", "Staging mode: mutagen, neighboring, internal", "MODE"),
        ("probe-mode", "Probe mode: probe, assume", "MODE"),
        ("default-file-mode", "Mode (octal) of files created", "MODE"),
        ("default-directory-mode", "Mode (octal) of directories created", "MODE"),
        ("default-owner", "Owner (name or id:N) of content created", "OWNER"),
        ("default-group", "Group (name or id:N) of content created", "GROUP"),
    )):
        function = side_options(function, base, help_text, metavar, ("alpha", "beta"))
    function = click.option("--compression-beta", metavar="ALGORITHM",
                            help="Compression to beta (beta only)")(function)
    function = click.option("--compression-alpha", metavar="ALGORITHM",
                            help="Compression to alpha (alpha only)")(function)
    function = click.option("-C", "--compression", metavar="ALGORITHM",
                            help="Compression to remote endpoints: lz4 (default), none")(function)
    return function


@sync.command("create")
@click.argument("alpha")
@click.argument("beta")
@create_options
@click.option("-m", "--mode", "--sync-mode", "mode", metavar="MODE",
              help="two-way-safe, two-way-resolved, one-way-safe or one-way-replica.")
@click.option("-H", "--hash", "hash", metavar="ALGORITHM", help="xxh128, sha1 or sha256.")
@click.option("--max-entry-count", metavar="COUNT", help="Largest number of entries per endpoint.")
@click.option("--max-staging-file-size", metavar="SIZE",
              help="Largest file an endpoint stages (e.g. 100MB, 1GiB).")
@click.option("--symlink-mode", metavar="MODE", help="portable, ignore or posix-raw.")
@click.option("--ignore-syntax", metavar="SYNTAX", help="mutagen or docker.")
@click.option("-i", "--ignore", "ignores", multiple=True, metavar="PATTERN",
              help="Ignore pattern (repeatable; comma-separated lists are split).")
@click.option("--ignore-vcs", is_flag=True, help="Ignore VCS directories (.git, .svn, ...).")
@click.option("--no-ignore-vcs", is_flag=True, help="Propagate VCS directories.")
@click.option("--permissions-mode", metavar="MODE", help="portable or manual.")
@_create_options
def create(alpha, beta, **options):
    """Create and start a synchronization session between ALPHA and BETA.

    Each is a local path, [user@]host[:port]:path (SSH) or docker://[user@]container/path.
    """
    from . import sync_arguments  # the configuration and ignore machinery: only create needs it

    try:
        request = sync_arguments.build_create({"alpha": alpha, "beta": beta, **options})
    except sync_arguments.ArgumentError as error:
        raise CliError(str(error)) from None
    create_session(request, CREATE_TIMEOUT)


# --------------------------------------------------------------------------------------- list


@sync.command("list")
@list_options
def list_(sessions, long, as_json, label_selector):
    """List synchronization sessions and their status."""
    from . import sync_output

    show_list(messages.SyncList, sync_output, sessions, label_selector, long, as_json)


# ------------------------------------------------------------------------------------ monitor


@sync.command("monitor")
@monitor_options
def monitor(sessions, long, label_selector):
    """Show the status of the most recently created matching session as it changes (Ctrl-C ends)."""
    from . import sync_output

    show_monitor(messages.SyncList, sync_output, sessions, label_selector, long)


# -------------------------------------------------------------------------- session commands


def _act(sessions, label_selector, all_, prompt: str, make_request, timeout: float,
         prompts: bool = False) -> None:
    """Resolve the selection, then send ``make_request(single selection)`` for each session."""
    act(checked_selection(sessions, label_selector, all_), messages.SyncList, prompt, make_request, timeout,
        prompts=prompts)


@sync.command("flush")
@_selection_options
@click.option("--skip-wait", is_flag=True,
              help="Do not wait for the resulting synchronization cycles to complete.")
def flush(sessions, all_, label_selector, skip_wait):
    """Force a synchronization cycle (and wait for it to complete)."""
    _act(sessions, label_selector, all_, "Forcing synchronization cycle for session {}...",
         lambda chosen: messages.SyncFlush(selection=chosen, skip_wait=skip_wait),
         LIST_TIMEOUT if skip_wait else FLUSH_TIMEOUT)


@sync.command("pause")
@_selection_options
def pause(sessions, all_, label_selector):
    """Pause synchronization sessions."""
    _act(sessions, label_selector, all_, "Pausing session {}...",
         lambda chosen: messages.SyncPause(selection=chosen), CONTROL_TIMEOUT)


@sync.command("resume")
@_selection_options
def resume(sessions, all_, label_selector):
    """Resume paused or halted synchronization sessions."""
    _act(sessions, label_selector, all_, "Resuming session {}...",
         lambda chosen: messages.SyncResume(selection=chosen), CONTROL_TIMEOUT, prompts=True)


@sync.command("reset")
@_selection_options
def reset(sessions, all_, label_selector):
    """Reset the synchronization history (ancestor) of sessions."""
    _act(sessions, label_selector, all_, "Resetting session {}...",
         lambda chosen: messages.SyncReset(selection=chosen), CONTROL_TIMEOUT)


@sync.command("terminate")
@_selection_options
def terminate(sessions, all_, label_selector):
    """Terminate synchronization sessions (files on disk are left untouched)."""
    _act(sessions, label_selector, all_, "Terminating session {}...",
         lambda chosen: messages.SyncTerminate(selection=chosen), CONTROL_TIMEOUT)
