"""``mutagen-actors daemon ...``: run, start, stop, status, log (+ hidden debug-session)."""

from __future__ import annotations

import os
import sys
import time

import click

from mutagen_actors.wire.messages import control

from . import client, output
from .errors import CliError

STATUS_TIMEOUT = 4.0
STOP_TIMEOUT = 60.0
DEBUG_CREATE_TIMEOUT = 30.0
TERMINATE_TIMEOUT = 60.0
NOT_RUNNING_EXIT = 3


@click.group("daemon", invoke_without_command=True)
@click.pass_context
def daemon(ctx):
    """Control the daemon's lifecycle."""
    if ctx.invoked_subcommand is None:
        output.say(ctx.get_help())


@daemon.command("run")
def run():
    """Run the daemon in the foreground (until SIGTERM/SIGINT or `daemon stop`)."""
    from mutagen_actors.supervisor import daemon as daemon_module
    from mutagen_actors.supervisor.datadir import DataDirectoryError
    from mutagen_actors.supervisor.lock import LockHeld

    main_module = getattr(sys.modules["__main__"], "__spec__", None)
    if getattr(main_module, "name", None) != "mutagen_actors.cli.__main__":
        # Run as `python -m mutagen_actors.cli`: the fork server's children then do not re-import
        # this process's entry script (multiprocessing does that for a script given by path),
        # which would load the whole CLI into every actor.
        os.execv(sys.executable, [sys.executable, "-m", "mutagen_actors.cli", *sys.argv[1:]])
    where = client.paths()
    if sys.stderr.isatty():
        output.notice(f"mutagen-actors daemon running (pid {os.getpid()}); log: {where.log}")
    try:
        daemon_module.run(where)
    except LockHeld as held:
        raise CliError(f"{held} for {where.root}") from None
    except DataDirectoryError as error:
        raise CliError(str(error)) from None


@daemon.command("start")
def start():
    """Start the daemon in the background if it is not running."""
    try:
        connection = client.connect(autostart=False)
    except client.DaemonNotRunning:
        connection = client.start_background(client.paths())
        output.say(f"Daemon started (pid {connection.welcome.pid})")
        return
    output.say(f"Daemon already running (pid {connection.welcome.pid})")


@daemon.command("stop")
def stop():
    """Stop the daemon (and every session's actors) if it is running."""
    try:
        connection = client.connect(autostart=False)
    except client.DaemonNotRunning:
        output.say("Daemon is not running")
        return
    pid = connection.welcome.pid
    try:
        connection.client.request(control.StopDaemon(), client.ANSWER_TIMEOUT)
    except OSError:
        pass  # it closed the connection while stopping: fine
    except client.RequestTimeout:
        raise CliError(client.hung_message(client.ANSWER_TIMEOUT)) from None
    if not client.wait_for_exit(pid, STOP_TIMEOUT):
        raise CliError(f"the daemon (pid {pid}) did not stop within {STOP_TIMEOUT:g} s "
                       "(see `mutagen-actors daemon log`)")
    output.say("Daemon stopped")


@daemon.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(as_json):
    """Show the daemon, its sessions and their actors (exit status 3 if it is not running)."""
    try:
        connection = client.connect(autostart=False)
    except client.DaemonNotRunning:
        output.print_not_running(as_json)
        sys.exit(NOT_RUNNING_EXIT)
    reply = connection.request(control.GetDaemonStatus(), STATUS_TIMEOUT)
    if as_json:
        output.print_json(output.status_json(reply))
    else:
        output.print_daemon_status(reply)


@daemon.command("log")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines as they come.")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many of the last lines to print first.")
def log(follow, lines):
    """Print the daemon's log (JSON lines from the daemon and every actor)."""
    path = client.paths().log
    try:
        stream = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise CliError(f"no log yet at {path} (the daemon has never run here)") from None
    with stream:
        tail = stream.readlines()[-lines:] if lines else []
        stream.seek(0, os.SEEK_END)
        output.write_stream("".join(tail))
        try:
            while follow:
                chunk = stream.read()
                if chunk:
                    output.write_stream(chunk)
                else:
                    time.sleep(0.2)  # like `tail -f`: wait for the file to grow
        except KeyboardInterrupt:
            pass  # Ctrl-C is how one stops following


# ----------------------------------------------------------------- diagnostics (hidden)


@daemon.group("debug-session", hidden=True)
def debug_session():
    """Diagnostic sessions of test actors (for tests and benchmarks)."""


@debug_session.command("create")
@click.option("--actors", type=int, default=1, show_default=True)
@click.option("--crash-on-start", is_flag=True)
@click.option("--name", default="")
@click.option("--json", "as_json", is_flag=True)
def debug_create(actors, crash_on_start, name, as_json):
    connection = client.connect()
    reply = connection.request(control.CreateDebugSession(actors, crash_on_start, name),
                               DEBUG_CREATE_TIMEOUT)
    if as_json:
        output.print_json(reply.session)
    else:
        output.say(f"Created session {reply.session.id}")
        for line in output.session_lines(reply.session):
            output.say(line)


@debug_session.command("terminate")
@click.argument("session")
def debug_terminate(session):
    connection = client.connect()
    connection.request(control.TerminateSession(session), TERMINATE_TIMEOUT)
    output.say(f"Terminated session {session}")


@debug_session.command("list")
@click.option("--json", "as_json", is_flag=True)
def debug_list(as_json):
    connection = client.connect()
    reply = connection.request(control.GetDaemonStatus(), STATUS_TIMEOUT)
    if as_json:
        output.print_json(reply.sessions)
        return
    if not reply.sessions:
        output.say("No sessions")
    for session in reply.sessions:
        for line in output.session_lines(session):
            output.say(line)
