"""Messages of the actor domain: what a supervisor says to an actor's mailbox.

Every actor answers ``base.Ping`` with ``base.Pong`` (heartbeat), ``GetStatistics`` with
``Statistics`` and ``Stop`` with ``base.Ok`` (then stops). Anything else is the actor's own
business; a message it does not handle gets ``ErrorReply("unknown-request", ...)``.

Hibernation (on-demand children, ``supervisor.child_spec.ChildSpec.on_demand``): an actor asks
the daemon's wake mailbox ``WakeChild`` to have a sibling running; the supervisor starts it if it
hibernates and sends it ``KeepAwake`` (which restarts its idle clock) before answering
``ChildAwake``.
"""

from .base import Message


class Stop(Message):
    """Ask an actor to stop gracefully: it answers ``Ok``, runs ``on_stop`` and exits with 0."""


class GetStatistics(Message):
    """Ask an actor for its ``Statistics``."""


class Statistics(Message):
    """An actor's counters.

    ``queue_depth``: requests received and not yet handled; ``handled``: requests handled since
    this incarnation started; ``last_activity``: wall-clock time (seconds since the epoch) of the
    last message received or handled; ``restarts``: how many times the supervisor restarted this
    actor before this incarnation; ``started``: wall-clock start of this incarnation.
    """

    pid: int
    queue_depth: int
    handled: int
    last_activity: float
    restarts: int
    started: float


class Sleep(Message):
    """Diagnostic request (test actors): keep the actor busy for ``seconds``, then ``Ok``."""

    seconds: float


class KeepAwake(Message):
    """Answered ``Ok`` by every actor's runtime; counts as work, so an actor with an idle exit
    stays up for at least its idle delay from now."""


class WakeChild(Message):
    """To the daemon's wake mailbox: make child ``child`` of session ``session`` run (start it
    if it hibernates) and keep it up for its idle delay; answered ``ChildAwake`` once it is
    ready, or ``ErrorReply``: ``not-found`` (no such session or child), ``unavailable`` (the
    session is halted or stopping, or the child was not ready within ``timeout`` seconds)."""

    session: str
    child: str
    timeout: float


class ChildAwake(Message):
    """Answer to ``WakeChild``. ``started``: a new incarnation runs since the request arrived
    (peers may reconnect at once rather than on their reconnect timer); ``pid`` of the running
    incarnation; ``idle_exit``: its idle delay in seconds (0 = it never hibernates)."""

    started: bool
    pid: int
    idle_exit: float


MESSAGES: tuple = (Stop, GetStatistics, Statistics, Sleep, KeepAwake, WakeChild, ChildAwake)
