"""The lifecycle plumbing shared by ``sync`` and ``forward`` commands (transport-independent).

- ``StatusLine``: Mutagen's prompt / status line (rewritten in place on a terminal).
- ``selection_options``: the ``SESSIONS... [-a/--all] [--label-selector]`` arguments.
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

from . import client, output, prompting
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
