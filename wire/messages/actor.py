"""Messages of the actor domain: what a supervisor says to an actor's mailbox.

Every actor answers ``base.Ping`` with ``base.Pong`` (heartbeat), ``GetStatistics`` with
``Statistics`` and ``Stop`` with ``base.Ok`` (then stops). Anything else is the actor's own
business; a message it does not handle gets ``ErrorReply("unknown-request", ...)``.
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


MESSAGES: tuple = (Stop, GetStatistics, Statistics, Sleep)
