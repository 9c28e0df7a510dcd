"""The actor base class.

The runtime (``process.run``) calls, in order: ``on_start()`` once (the actor is reported *ready*
to its supervisor only after it returns; if it raises, the process reports the failure and exits
with status 1), then ``handle(message)`` for each request, one at a time, in arrival order, then
``on_stop()`` once when asked to stop (``Stop`` message, SIGTERM, or the supervisor died).
Opt-in overlap: requests whose type is in ``CONCURRENT`` may be handled beside each other, at
most ``MAX_CONCURRENT`` at once; every other request still runs alone (rules and ordering
guarantees: ``admission``). A ``Stop`` waits for the requests being handled.

``handle`` returns the reply body (``None`` means ``Ok``; a ``wire.codec.RawFrame``, a reply
the actor received header-only from elsewhere, is sent on as it came: the raw reply of a relay,
decoded and validated by the requester); raising ``wire.handling.NotHandled``
answers ``unknown-request``, ``wire.handling.Refused`` answers its code, any other exception
answers ``failed`` with the text and is logged; the actor keeps running. An actor that finds
its own state corrupt should call ``self.crash(reason)``: the process exits with status 1 and
its supervisor restarts it from a clean state.

An actor launched with ``idle_exit`` > 0 (an on-demand child) stops by itself, with status 0,
once it has had no request (heartbeats and statistics do not count; ``KeepAwake`` does) for that
many seconds and ``busy()`` is false: ``on_stop`` runs as for any orderly stop.

Heartbeats are answered by the same event loop that runs ``handle``: a handler may await for as
long as it likes, but must not block the loop (CPU-bound work without awaiting) for more than a
few seconds; run such work with ``asyncio.to_thread`` or in slices. An actor whose loop does not
answer for three heartbeat intervals (15 s by default) is taken for hung and killed.
"""

from __future__ import annotations

from dataclasses import dataclass

from mutagen_actors.wire.handling import NotHandled

from .launch import ActorLaunch


@dataclass
class ActorContext:
    launch: ActorLaunch
    log: object  # a structlog logger bound with session and actor
    zmq_context: object

    @property
    def args(self) -> dict:
        return self.launch.args


class ActorCrash(BaseException):
    """Raised (via ``Actor.crash``) to end the process abnormally so it is restarted (a
    ``BaseException``: request handling does not turn it into an error reply)."""


class Actor:
    # Message types whose requests may overlap each other (see ``admission``); () = none.
    CONCURRENT: tuple = ()
    MAX_CONCURRENT: int = 1
    # Names of message types the actor only passes on: its mailbox hands them to ``handle`` as
    # ``wire.codec.RawFrame`` (envelope checked, body not decoded; see ``wire.sockets``).
    RELAY: tuple = ()
    # (Replies: ``handle`` may return a ``RawFrame`` it got from the next hop; the mailbox sends
    # its body as it came, see ``wire.sockets.Mailbox.send_to``.)

    def __init__(self, context: ActorContext):
        self.context = context
        self.log = context.log

    async def on_start(self) -> None:
        """Acquire resources. Runs before the actor reports ready."""

    async def handle(self, message):
        """Answer one request."""
        raise NotHandled

    async def on_stop(self) -> None:
        """Release resources. Runs once, on every orderly stop."""

    def busy(self) -> bool:
        """True while the actor has work in progress that no request shows (a job running in a
        task). An actor with an idle exit (``ActorLaunch.idle_exit``) never exits while busy."""
        return False

    def crash(self, reason: str):
        raise ActorCrash(reason)
