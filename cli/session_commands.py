"""The lifecycle plumbing shared by ``sync`` and ``forward`` commands (transport-independent).

- ``StatusLine``: Mutagen's prompt / status line (rewritten in place on a terminal).
- ``selection_options``: the ``SESSIONS... [-a/--all] [--label-selector]`` arguments;
  ``list_options`` / ``monitor_options``: the arguments of ``list`` and ``monitor``;
  ``create_options``: the options every ``create`` has (name, labels, paused, configuration
  files); ``side_options``: ``--<base>``, ``--<base>-<first side>``, ``--<base>-<second side>``.
- ``checked_selection``: a validated ``Selection``, or ``CliError`` with the one-line reason.
- ``show_list`` / ``show_monitor``: the bodies of ``list`` and ``monitor`` given the kind's
  list request type and output module (``list_json``, ``list_lines``, ``monitor_header_lines``,
  ``monitor_line``).
- ``create_session(request, timeout)``: send a create request with the ``Creating session...``
  prompt on stderr, print ``Created session <id>``. On a terminal the daemon's questions (an
  unknown SSH host key, a password) are answered there meanwhile (``prompting``); so are those
  of ``act(..., prompts=True)`` (``resume``).
- ``resolve`` / ``act``: resolve a selection with one list request (a specification matching
  nothing fails before anything changes), then act on each session in creation order with a
  prompt line on stderr.
- ``monitor``: the header, then the long-poll loop on the newest matching session.

The caller supplies the kind-specific pieces: its list request type (``SyncList`` or
``ForwardList``: fields ``selection``, ``after_index``, ``wait``; the reply has ``sessions`` and
``index``), its request builders and its output functions. Failures end in ``CliError`` (one
line on stderr, exit 1); ``monitor`` ends quietly on Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterable

import click

from mutagen_actors.wire.messages.sync import Selection

from . import client, output, prompting, selecting
from .errors import CliError

LIST_TIMEOUT = 10.0
MONITOR_WAIT = 10.0  # long-poll period of ``monitor``
MONITOR_MINIMUM_INTERVAL = 0.05  # at most one status line update every 50 ms


class StatusLine:
    """One line rewritten in place on a terminal; one printed line per change otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty()
        self.width = 0
        self.last = None

    def show(self, text: str) -> None:
        if text == self.last:
            return
        self.last = text
        if self.interactive:
            padding = " " * max(self.width - len(text), 0)
            self.stream.write("\r" + text + padding)
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.interactive and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
        self.width = 0
        self.last = None

    def finish(self) -> None:
        """Leave the current line as it is and move to the next one."""
        if self.interactive and self.width:
            self.stream.write("\n")
            self.stream.flush()
        self.width = 0
        self.last = None


def selection_options(function):
    """``SESSIONS...``, ``-a/--all`` and ``--label-selector`` of the commands acting on sessions."""
    function = click.option("--label-selector", metavar="SELECTOR",
                            help="Act on sessions matching the label selector.")(function)
    function = click.option("-a", "--all", "all_", is_flag=True, help="Act on all sessions.")(function)
    return click.argument("sessions", nargs=-1)(function)


def create_options(function):
    """``-n/--name``, ``-l/--label``, ``-p/--paused``, ``--no-global-configuration`` and
    ``-c/--configuration-file``."""
    function = click.option("-c", "--configuration-file", "configuration_files", multiple=True,
                            metavar="PATH",
                            help="Extra configuration file (repeatable, applied in order)."
                            )(function)
    function = click.option("--no-global-configuration", is_flag=True,
                            help="Do not read ~/.mutagen-actors.yml.")(function)
    function = click.option("-p", "--paused", is_flag=True,
                            help="Create the session paused.")(function)
    function = click.option("-l", "--label", "labels", multiple=True, metavar="KEY[=VALUE]",
                            help="Label (repeatable; comma-separated lists are split).")(function)
    return click.option("-n", "--name", default="", help="Session name.")(function)


def side_options(function, base: str, help_text: str, metavar: str, sides: tuple[str, str]):
    """``--<base>`` and one ``--<base>-<side>`` per side (help ``<help_text> (<side> only)``)."""
    for suffix, where in ((f"-{sides[1]}", f" ({sides[1]} only)"),
                          (f"-{sides[0]}", f" ({sides[0]} only)"), ("", "")):
        function = click.option(f"--{base}{suffix}", metavar=metavar,
                                help=f"{help_text}{where}")(function)
    return function


def list_options(function):
    """``SESSIONS...``, ``-l/--long``, ``--json`` and ``--label-selector`` of ``list``."""
    function = click.option("--label-selector", metavar="SELECTOR",
                            help="List sessions matching the selector.")(function)
    function = click.option("--json", "as_json", is_flag=True,
                            help="Print a JSON array of session objects (Mutagen's field names)."
                            )(function)
    function = click.option("-l", "--long", "long", is_flag=True,
                            help="Show detailed session information.")(function)
    return click.argument("sessions", nargs=-1)(function)


def monitor_options(function):
    """``SESSIONS...``, ``-l/--long`` and ``--label-selector`` of ``monitor``."""
    function = click.option("--label-selector", metavar="SELECTOR",
                            help="Monitor the newest session matching the selector.")(function)
    function = click.option("-l", "--long", "long", is_flag=True,
                            help="Show detailed session information.")(function)
    return click.argument("sessions", nargs=-1)(function)


def checked_selection(specifications, label_selector, all_, *,
                      default_all: bool = False) -> Selection:
    """The validated selection (``selecting`` rules), or ``CliError`` with the reason."""
    try:
        return selecting.selection(specifications, label_selector, all_, default_all=default_all)
    except selecting.ArgumentError as error:
        raise CliError(str(error)) from None


def show_list(list_type, formatter, sessions, label_selector, long: bool, as_json: bool) -> None:
    """Print the selected sessions (all by default): ``formatter.list_json`` as JSON, or
    ``formatter.list_lines``."""
    chosen = checked_selection(sessions, label_selector, False, default_all=True)
    states = resolve(client.connect(), list_type, chosen)
    if as_json:
        import json

        output.say(json.dumps(formatter.list_json(states), indent=2, ensure_ascii=False))
        return
    for text in formatter.list_lines(states, long):
        output.say(text)


def show_monitor(list_type, formatter, sessions, label_selector, long: bool) -> None:
    """``monitor`` on the newest selected session with ``formatter``'s header and status line."""
    chosen = checked_selection(sessions, label_selector, False, default_all=True)
    monitor(chosen, list_type, lambda state: formatter.monitor_header_lines(state, long),
            formatter.monitor_line)


def create_session(request, timeout: float) -> None:
    """Send ``request`` (prompt ``Creating session...`` on stderr), print the new identifier."""
    connection = client.connect()
    line = StatusLine(sys.stderr)
    _answer_questions(connection, line)
    line.show("Creating session...")
    try:
        reply = connection.request(request, timeout)
    finally:
        line.clear()
    output.say(f"Created session {reply.identifier}")


def _answer_questions(connection: client.Connection, line: StatusLine) -> None:
    """On a terminal: answer the daemon's questions there (the status line is cleared for the
    question and shown again after it)."""
    if not prompting.can_prompt():
        return

    def on_question(question):
        shown = line.last
        line.clear()
        try:
            return prompting.answer_on_terminal(question)
        finally:
            if shown:
                line.show(shown)

    connection.enable_prompting(on_question)


def resolve(connection: client.Connection, list_type, chosen: Selection) -> list:
    """The states of the sessions ``chosen`` selects, oldest first."""
    reply = connection.request(list_type(selection=chosen), LIST_TIMEOUT)
    return list(reply.sessions)


def act(chosen: Selection, list_type, prompt: str, make_request: Callable[[Selection], object],
        timeout: float, *, prompts: bool = False) -> None:
    """Resolve ``chosen``, then send ``make_request(single selection)`` for each session, showing
    ``prompt.format(identifier)`` on stderr (left on screen if a request fails). ``prompts``:
    the daemon's questions are answered on the terminal (``resume``)."""
    connection = client.connect()
    states = resolve(connection, list_type, chosen)
    line = StatusLine(sys.stderr)
    if prompts:
        _answer_questions(connection, line)
    try:
        for state in states:
            line.show(prompt.format(state.identifier))
            single = Selection(specifications=[state.identifier])
            connection.request(make_request(single), timeout)
    except CliError:
        line.finish()
        raise
    line.clear()


def monitor(chosen: Selection, list_type, header_lines: Callable[[object], Iterable[str]],
            status_line: Callable[[object], str]) -> None:
    """Print ``header_lines(state)`` of the newest session ``chosen`` selects, then its
    ``status_line(state)`` on stdout as it changes, until Ctrl-C or the session goes away."""
    connection = client.connect()
    line = StatusLine()
    state = None
    try:
        reply = connection.request(list_type(selection=chosen), LIST_TIMEOUT)
        if not reply.sessions:
            raise CliError("no matching sessions exist")
        state = reply.sessions[-1]
        for text in header_lines(state):
            output.say(text)
        single = Selection(specifications=[state.identifier])
        index = reply.index
        while True:
            line.show(status_line(state))
            started = time.monotonic()
            reply = connection.request(
                list_type(selection=single, after_index=index, wait=MONITOR_WAIT),
                MONITOR_WAIT + client.ANSWER_TIMEOUT)
            if len(reply.sessions) != 1:
                raise CliError(f"session {state.identifier} no longer exists")
            state, index = reply.sessions[0], reply.index
            pause = MONITOR_MINIMUM_INTERVAL - (time.monotonic() - started)
            if pause > 0:
                time.sleep(pause)  # rate limit of the display, not a wait for a condition
    except KeyboardInterrupt:
        line.finish()
        return
    except CliError as error:
        line.finish()
        if error.message.startswith('specification "') and state is not None:
            raise CliError(f"session {state.identifier} no longer exists") from None
        raise
