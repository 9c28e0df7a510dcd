"""Messages of the control domain: the CLI talking to the daemon over the control socket.

Every connection starts with ``Hello`` answered by ``Welcome`` (the two sides' versions, so the
CLI can say "client/daemon version mismatch"). Status structures are plain structs nested in
replies; they are not messages by themselves.
"""

from typing import Optional

import msgspec

from .base import Message


class Hello(Message):
    """First request on every control connection."""

    client_version: str


class Welcome(Message):
    """Answer to ``Hello``: the daemon's software version and process id."""

    daemon_version: str
    pid: int


class ActorState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One supervised actor as the daemon sees it.

    ``state``: ``starting``, ``running``, ``restarting``, ``stopping``, ``stopped`` or ``failed``.
    ``pid`` is 0 when no process runs. ``last_exit`` says how the previous incarnation ended
    ("" if none). ``ready_at`` is the wall-clock time the current incarnation reported ready.
    ``statistics`` is filled when the actor answered in time.
    """

    id: str
    state: str
    pid: int
    restarts: int
    mailbox: str
    last_exit: str
    ready_at: float
    statistics: Optional["ActorCounters"] = None


class ActorCounters(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    queue_depth: int
    handled: int
    last_activity: float


class SessionState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One session: ``status`` is ``starting``, ``running``, ``halted`` or ``stopped``;
    ``halt_reason`` says why a halted session stopped restarting its actors."""

    id: str
    name: str
    kind: str
    status: str
    halt_reason: str
    created: float
    strategy: str
    actors: list[ActorState]


class GetDaemonStatus(Message):
    pass


class DaemonStatus(Message):
    version: str
    pid: int
    started: float
    data_directory: str
    log_path: str
    forkserver_pid: int
    sessions: list[SessionState]


class StopDaemon(Message):
    """Ask the daemon to stop gracefully (all sessions' actors, then itself); answered ``Ok``
    before it stops."""


class CreateDebugSession(Message):
    """Diagnostic: start a session of ``actors`` test actors (``crash_on_start``: each raises in
    ``on_start``, to exercise the restart budget). Answered with ``DebugSessionCreated`` once every
    actor is ready or the session halted."""

    actors: int
    crash_on_start: bool = False
    name: str = ""


class DebugSessionCreated(Message):
    session: SessionState


class TerminateSession(Message):
    """Stop a session's actors and forget it (its persisted record is deleted)."""

    id: str


class EnablePrompting(Message):
    """Sent by a CLI command that can answer questions (its stdin and stderr are a terminal)
    before its ``SyncCreate``/``SyncResume``/...: while the daemon handles that command's later
    requests on this connection, it may send ``PromptQuestion`` frames on it. Answered ``Ok``."""


class PromptQuestion(Message):
    """Daemon -> CLI, on the connection of a waiting command, with its own request id (the CLI
    answers with ``PromptAnswer``, ``reply_to`` = that id) while the CLI still waits for the
    command's reply. ``kind``: ``host-key`` (answer "yes" to trust an unknown key), ``password``
    or ``kbdint``; ``echo`` false: the answer must not be shown as it is typed; ``timeout``:
    seconds the user has to answer (the daemon gives up a little later)."""

    kind: str
    message: str
    echo: bool
    timeout: float


class PromptAnswer(Message):
    """The answer to a ``PromptQuestion`` or ``PromptRelay``: ``answer`` None when nobody
    answered; ``reason`` then says why (``timed out``, ``no terminal``, ``interrupted``)."""

    answer: Optional[str]
    reason: str = ""


class PromptRelay(Message):
    """Endpoint actor -> daemon (its prompt mailbox): a question of the SSH connect of session
    ``session``'s ``side``; relayed to the CLI command waiting on that session, if any (else
    answered ``PromptAnswer(None, "no terminal")`` at once)."""

    session: str
    side: str
    kind: str
    message: str
    echo: bool


MESSAGES: tuple = (
    Hello,
    Welcome,
    GetDaemonStatus,
    DaemonStatus,
    StopDaemon,
    CreateDebugSession,
    DebugSessionCreated,
    TerminateSession,
    EnablePrompting,
    PromptQuestion,
    PromptAnswer,
    PromptRelay,
)
