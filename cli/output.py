"""All formatting of what the CLI prints: messages, status tables, JSON, errors.

Results go to stdout; notices (like the autostart line) and errors go to stderr.
"""

from __future__ import annotations

import sys
import time

import click


def say(text: str = "") -> None:
    click.echo(text)


def notice(text: str) -> None:
    click.echo(text, err=True)


def error(message: str) -> None:
    """The one error line: newlines are folded so the message stays one line."""
    click.echo("Error: " + " ".join(str(message).split()), err=True)


def to_builtins(value):
    """msgspec structs (positional on the wire) as dicts with field names, for JSON."""
    fields = getattr(value, "__struct_fields__", None)
    if fields is not None:
        return {name: to_builtins(getattr(value, name)) for name in fields}
    if isinstance(value, (list, tuple)):
        return [to_builtins(item) for item in value]
    if isinstance(value, dict):
        return {key: to_builtins(item) for key, item in value.items()}
    return value


def print_json(value) -> None:
    import json

    say(json.dumps(to_builtins(value), indent=2, sort_keys=False))


def _duration(seconds: float) -> str:
    return compact_duration(int(max(seconds, 0)))


def compact_duration(seconds: int) -> str:
    """``1h05m``, ``2m07s`` or ``9s`` for a whole number of seconds (>= 0)."""
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def session_lines(session) -> list[str]:
    title = session.id + (f" ({session.name})" if session.name else "")
    lines = [f"Session {title}", f"    Kind: {session.kind}    Status: {session.status.capitalize()}"]
    if session.halt_reason:
        lines.append(f"    Halted: {session.halt_reason}")
    for actor in session.actors:
        pid = str(actor.pid) if actor.pid else "-"
        text = (f"    {actor.id:<12} {actor.state:<10} pid {pid:<8} restarts {actor.restarts}")
        if actor.statistics is not None:
            text += (f"  queue {actor.statistics.queue_depth}"
                     f"  handled {actor.statistics.handled}")
        if actor.last_exit:
            text += f"  last exit: {actor.last_exit}"
        lines.append(text)
    return lines


def print_daemon_status(status) -> None:
    say(f"Daemon: running (pid {status.pid}, version {status.version}, "
        f"up {_duration(time.time() - status.started)})")
    say(f"Data directory: {status.data_directory}")
    say(f"Log: {status.log_path}")
    say(f"Fork server: pid {status.forkserver_pid or '-'}")
    if not status.sessions:
        say("Sessions: none")
        return
    say(f"Sessions: {len(status.sessions)}")
    for session in status.sessions:
        for line in session_lines(session):
            say("  " + line)


def print_not_running(as_json: bool) -> None:
    if as_json:
        import json

        say(json.dumps({"running": False}))
    else:
        say("Daemon: not running")


def status_json(status) -> dict:
    data = to_builtins(status)
    data["running"] = True
    return data


def write_stream(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
