"""The daemon's forwarding sessions: create / list / pause / resume / terminate
(``wire.messages.forward``), persistence as ``SessionRecord`` of kind ``forward``. Mirrors
``sync_manager``.

One session = one ``SessionSupervisor`` (``one_for_one``) with one child, the ``forwarder``
(``actors.forward.actor``), which listens on the source and dials the destination for each
accepted connection. A paused session is supervised with no children at all, so pausing
releases the listening address. A forwarder that dies is restarted at once by its session
supervisor (the restarted incarnation reclaims its own stale unix socket); past the restart
budget the session is halted with the reason.

Rules:
- Create validates everything itself (never trusting the CLI): local, SSH or Docker endpoints
  (the forwarder connects the remotes itself: ``actors.forward.remote``), each endpoint parsed by the
  forwarding engine's parser (protocol, port range, unix path length), a source port other than
  0 (a persisted session must listen on the same address after a restart), name and labels
  (``identity``), socket settings. Unless paused it answers once the forwarder listens; if the
  forwarder cannot listen (address in use, permission denied, unknown socket owner…) the
  session is removed and the listener's one-line reason is the answer.
- Resume answers once the forwarder listens again, or with the reason it cannot (the session is
  then unpaused and its supervisor keeps retrying within its budget, as Mutagen keeps trying).
- Prompts (``prompt_relay``): when the CLI of a ``create`` or ``resume`` can answer questions,
  the daemon first connects once to each SSH side itself with that terminal as the prompter, so
  an unknown host key is asked there ("yes" adds it to known_hosts, and the forwarder's own
  connect then finds it); "no", or a host that cannot be reached, refuses the create (nothing
  is kept) or fails the resume with the reason (the session is resumed all the same). The
  forwarder's own connects never prompt, so a password-only SSH host cannot be forwarded to.
- Every command answers in bounded time: statistics are asked of the forwarder with a short
  deadline (``STATE_TIMEOUT``), falling back to the last answer.
- Statistics: connection and byte totals add up over the forwarder's incarnations while the
  daemon runs (a restarted forwarder counts from zero; the last figures seen of the previous
  one are kept). ``list`` with ``after_index`` is a long poll on a state index that moves with
  any change of a session's status or figures.
- Data: ``sessions/<id>.json`` only. Terminate deletes it.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Optional

import msgspec
import structlog

from mutagen_actors.actors.forward.endpoints import (
    DEFAULT_SOCKET_PERMISSION_MODE,
    ForwardingError,
    parse_endpoint,
    socket_options,
)
from mutagen_actors.actors.forward.remote import parse_remote_endpoint
from mutagen_actors.wire.errors import RemoteError, RequestTimeout
from mutagen_actors.wire.handling import NotHandled, Refused
from mutagen_actors.wire.messages import forward as fm
from mutagen_actors.wire.messages.sync import EndpointUrl, Selection

from . import identity, persistence, prompt_relay
from .child_spec import ChildSpec
from .manager_common import RecordFields, SessionManagerBase, validate_identity
from .persistence import SessionRecord
from .restart import Strategy
from .sessions import KINDS, Registry

KIND = "forward"
FORWARDER_ACTOR = "mutagen_actors.actors.forward.actor:ForwarderActor"
CHILD = "forwarder"
STATE_TIMEOUT = 0.5
LISTEN_TIMEOUT = 30.0
REMOTE_START_TIMEOUT = 60.0  # connect, maybe install the agent, listen
REMOTE_LISTEN_TIMEOUT = 90.0
POLL_INTERVAL = 0.02
FORWARDER_SHUTDOWN = 1.0  # an orderly stop only closes sockets
DIAL_TIMEOUT = 10.0
# agent.transports.ssh.DEFAULT_CONNECT_TIMEOUT, not imported from there: that module loads
# asyncssh, which the daemon does not keep (the connect runs in ``remote_probe``'s child).
SSH_CONNECT_TIMEOUT = 5.0
HANDLED = (fm.ForwardCreate, fm.ForwardList, fm.ForwardPause, fm.ForwardResume,
           fm.ForwardTerminate)
SOCKET_FIELDS = ("overwrite_mode", "owner", "group", "permission_mode")

log = structlog.get_logger("supervisor.forward")


# ---------------------------------------------------------------------------- pure helpers


def socket_settings(configuration: fm.ForwardConfiguration, side: str) -> fm.SocketConfiguration:
    """The socket settings in force on ``side`` ("source" or "destination"): its own value,
    else the session-wide one ("" / 0 still mean default)."""
    own = getattr(configuration, side)
    values = {}
    for name in SOCKET_FIELDS:
        value = getattr(own, name)
        values[name] = value if value else getattr(configuration.socket, name)
    return fm.SocketConfiguration(**values)


def remote_of(url: EndpointUrl) -> Optional[dict]:
    """The forwarder's description of the remote an endpoint lives on (None: local)."""
    if url.protocol == "local":
        return None
    return {"protocol": url.protocol, "user": url.user, "host": url.host, "port": url.port,
            "environment": dict(url.environment)}


def forwarder_args(create: fm.ForwardCreate) -> dict:
    """The forwarder actor's launch arguments (defaults resolved; ``source_remote`` /
    ``destination_remote`` only for a remote endpoint)."""
    source = socket_settings(create.configuration, "source")
    remotes = {f"{side}_remote": remote_of(getattr(create, side))
               for side in ("source", "destination") if remote_of(getattr(create, side))}
    return {**remotes,
        "source": create.source.path,
        "destination": create.destination.path,
        "socket_overwrite_mode": source.overwrite_mode or "leave",
        "socket_owner": source.owner,
        "socket_group": source.group,
        "socket_permission_mode": source.permission_mode or DEFAULT_SOCKET_PERMISSION_MODE,
        "dial_timeout": DIAL_TIMEOUT,
    }


def validate_endpoints(source: EndpointUrl, destination: EndpointUrl) -> None:
    """Raise ValueError naming the side and the problem. Local endpoints, or behind ``ssh`` /
    ``docker`` (a remote unix path must be absolute; the socket overwrite mode, owner, group and
    permission mode apply to a unix source wherever it listens: a remote one is made by our
    agent there, names resolved on the remote, and one it cannot honour fails the create)."""
    for side, url, listening in (("source", source, True), ("destination", destination, False)):
        if url.protocol not in ("local", "ssh", "docker"):
            raise ValueError(f"{side}: {url.protocol} forwarding endpoints are not supported")
        if url.protocol != "local" and not url.host:
            raise ValueError(f"{side}: the {url.protocol} endpoint names no host or container")
        try:
            if url.protocol == "local":
                endpoint = parse_endpoint(url.path, listening=listening)
            else:
                endpoint = parse_remote_endpoint(url.path, listening=listening)
        except ForwardingError as error:
            raise ValueError(f"{side}: {error}") from None
        if listening and not endpoint.is_unix and endpoint.port == 0:
            raise ValueError(f"source: invalid forwarding endpoint {url.path!r}: a source needs "
                             "a port between 1 and 65535")
        if endpoint.is_unix and url.path != str(endpoint):
            raise ValueError(f"{side}: the unix socket path must be absolute and normalized "
                             f"(got {url.path!r})")
    if source.path == destination.path and remote_of(source) == remote_of(destination):
        raise ValueError(f"source and destination are the same endpoint ({source.path}): "
                         "forwarding would loop")


def validate_configuration(configuration: fm.ForwardConfiguration) -> None:
    """Raise ValueError naming the first bad socket setting."""
    for side in ("source", "destination"):
        settings = socket_settings(configuration, side)
        try:
            socket_options(settings.overwrite_mode or "leave", settings.owner, settings.group,
                           settings.permission_mode or DEFAULT_SOCKET_PERMISSION_MODE)
        except ForwardingError as error:
            raise ValueError(f"{side}: {error}") from None


_START_FAILURE = re.compile(r"^start failed: (?:on_start raised \w+: )?")


def listen_failure(last_exit: str) -> str:
    """The one-line reason in a forwarder's ``start failed: on_start raised ForwardingError: …``
    exit description."""
    return _START_FAILURE.sub("", last_exit)


def halt_description(halt_reason: str, child) -> str:
    """Why a session halted, as a user reads it: the listener's reason when the forwarder kept
    failing to start (address in use…), else the supervisor's reason (restart budget spent)."""
    last_exit = getattr(child, "last_exit", "") or ""
    if last_exit.startswith("start failed"):
        return listen_failure(last_exit)
    return halt_reason


@dataclass
class Totals:
    """Counters of a session's forwarder incarnations that already ended (or were replaced)."""

    connections: int = 0
    outbound: int = 0
    inbound: int = 0
    errors: int = 0


@dataclass
class Figures:
    """What the latest forwarder incarnation said, and which one it was."""

    pid: int = 0
    statistics: Optional[fm.ForwardingStatistics] = None


def add_incarnation(totals: Totals, previous: Optional[fm.ForwardingStatistics]) -> Totals:
    """``totals`` with a finished incarnation's last figures added."""
    if previous is None:
        return totals
    return Totals(totals.connections + previous.total_connections,
                  totals.outbound + previous.outbound_bytes,
                  totals.inbound + previous.inbound_bytes,
                  totals.errors + previous.errors)


def forward_specs(record: SessionRecord) -> list[ChildSpec]:
    """Child specs of a forwarding session (none while it is paused)."""
    if record.paused:
        return []
    create = msgspec.convert(record.spec["create"], fm.ForwardCreate)
    remote = create.source.protocol != "local" or create.destination.protocol != "local"
    return [ChildSpec(CHILD, FORWARDER_ACTOR, forwarder_args(create),
                      shutdown=FORWARDER_SHUTDOWN,
                      start_timeout=REMOTE_START_TIMEOUT if remote else 10.0)]


KINDS[KIND] = (forward_specs, Strategy.ONE_FOR_ONE)


# ---------------------------------------------------------------------------- the manager


@dataclass
class _Session(RecordFields):
    """What the daemon keeps about one forwarding session besides its supervisor."""

    record: SessionRecord
    create: fm.ForwardCreate
    totals: Totals = field(default_factory=Totals)
    figures: Figures = field(default_factory=Figures)

    @classmethod
    def of(cls, record: SessionRecord) -> "_Session":
        return cls(record, msgspec.convert(record.spec["create"], fm.ForwardCreate))


class ForwardManager(SessionManagerBase):
    def __init__(self, registry: Registry):
        self.registry = registry
        self.paths = registry.runtime.paths
        self.sessions: dict[str, _Session] = {}
        self.index = 1
        self._signatures: dict[str, tuple] = {}
        for record in persistence.load_all(self.paths.sessions):
            if record.kind == KIND:
                try:
                    self.sessions[record.id] = _Session.of(record)
                except (KeyError, msgspec.ValidationError) as error:
                    log.error("unreadable forward session record", session=record.id,
                              error=str(error))

    async def handle(self, message):
        try:
            if isinstance(message, fm.ForwardCreate):
                return await self.create(message)
            if isinstance(message, fm.ForwardList):
                return await self.list(message)
            if isinstance(message, fm.ForwardPause):
                return await self._each(message.selection, self._pause)
            if isinstance(message, fm.ForwardResume):
                return await self._each(message.selection, self._resume)
            if isinstance(message, fm.ForwardTerminate):
                return await self._each(message.selection, self._terminate)
        except ValueError as error:
            raise Refused("invalid-argument", str(error)) from None
        raise NotHandled

    # ------------------------------------------------------------------ create

    async def create(self, message: fm.ForwardCreate) -> fm.ForwardCreated:
        validate_endpoints(message.source, message.destination)
        validate_identity(message.name, message.labels)
        validate_configuration(message.configuration)
        relay = prompt_relay.relay_for_current_command()
        if relay is not None and not message.paused:
            await self._ask_ssh_questions(message, relay)
        record = SessionRecord(id=identity.new_identifier("fwrd"), name=message.name, kind=KIND,
                               created=time.time(),
                               spec={"create": msgspec.to_builtins(message)},
                               paused=message.paused)
        persistence.save(self.paths.sessions, record)
        session = self.sessions[record.id] = _Session(record, message)
        self.registry._supervise(record)
        self.index += 1
        if not record.paused:
            try:
                await self._wait_listening(session, _listen_timeout(message))
            except Refused:
                await self._terminate(session)
                raise
        log.info("forward session created", session=record.id, source=message.source.path,
                 destination=message.destination.path, paused=record.paused)
        return fm.ForwardCreated(record.id)

    async def _ask_ssh_questions(self, create: fm.ForwardCreate,
                                 relay: prompt_relay.TerminalRelay) -> None:
        """Connect once to each SSH side with ``relay`` as the prompter (see the module rules);
        ``Refused`` naming the side and the reason when that fails."""
        # In a child process (``remote_probe``): the daemon never loads asyncssh itself.
        from .remote_probe import ProbeFailed, run_probe
        from .urls import Url

        for side in ("source", "destination"):
            url = getattr(create, side)
            if url.protocol != "ssh":
                continue
            target = Url(url.protocol, url.user, url.host, url.port, url.path,
                         dict(url.environment))
            try:
                await run_probe("ssh", target, log_path=self.paths.log, side=side,
                                prompter=relay.clock, timeout=SSH_CONNECT_TIMEOUT + 1)
            except ProbeFailed as error:
                raise Refused("unavailable", f"{side}: {relay.explain(str(error))}") from None
            except asyncio.TimeoutError:
                raise Refused("unavailable", f"{side}: unable to connect to {url.host}: no "
                                             f"answer within {SSH_CONNECT_TIMEOUT:g} s"
                              ) from None

    async def _wait_listening(self, session: _Session, timeout: float, *,
                              first_failure: bool = True) -> None:
        """Return once the forwarder is running (listening); Refused with the listener's
        reason once it failed to start (``first_failure``; otherwise once the session halted,
        since a restarted forwarder may reclaim its own stale unix socket), or past
        ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            supervisor = self.registry.sessions.get(session.id)
            if supervisor is None:
                raise Refused("unavailable", "the session stopped while starting")
            child = supervisor.children.get(CHILD)
            if supervisor.status == "halted":
                raise Refused("unavailable", halt_description(supervisor.halt_reason, child))
            if child is not None:
                # The first incarnation's failure decides, even when the poll only sees the
                # restarted one (which may already be running: a restart does not connect
                # first, and may reclaim a socket file the user said to leave alone).
                if first_failure and (child.restarts > 0
                                      or child.last_exit.startswith("start failed")):
                    raise Refused("unavailable", listen_failure(child.last_exit)
                                  if child.last_exit.startswith("start failed")
                                  else f"the forwarder {child.last_exit}")
                if child.state == "running":
                    return
            if time.monotonic() > deadline:
                raise Refused("unavailable", f"the forwarder did not listen within {timeout:g} s")
            await asyncio.sleep(POLL_INTERVAL)

    # ------------------------------------------------------------------ state

    async def _statistics(self, session: _Session) -> Optional[fm.ForwardingStatistics]:
        """The running forwarder's figures (None if none runs or it did not answer in time);
        folds a replaced incarnation's last figures into the session's totals."""
        supervisor = self.registry.sessions.get(session.id)
        child = supervisor.children.get(CHILD) if supervisor is not None else None
        if child is None or child.state != "running" or child.client is None \
                or child.process is None:
            return None
        pid = child.process.pid
        try:
            statistics = await child.client.request(fm.GetForwardingStatistics(),
                                                    timeout=STATE_TIMEOUT)
        except (RequestTimeout, RemoteError, ConnectionError):
            return None
        if not isinstance(statistics, fm.ForwardingStatistics):
            return None
        if session.figures.pid != pid:
            session.totals = add_incarnation(session.totals, session.figures.statistics)
            session.figures = Figures(pid, statistics)
        elif session.figures.statistics is None \
                or statistics.total_connections >= session.figures.statistics.total_connections:
            session.figures = Figures(pid, statistics)
        return statistics

    def _state(self, session: _Session,
               statistics: Optional[fm.ForwardingStatistics]) -> fm.ForwardSessionState:
        create, record = session.create, session.record
        supervisor = self.registry.sessions.get(session.id)
        child = supervisor.children.get(CHILD) if supervisor is not None else None
        status, last_error, connected, listening, open_connections = \
            "disconnected", "", False, "", 0
        destination_connected = False
        if supervisor is not None and supervisor.status == "halted":
            status = "halted-on-actor-failure"
            last_error = halt_description(supervisor.halt_reason, child)
        elif not record.paused:
            if statistics is not None:  # a remote being reconnected: connecting-<side>
                status, connected = statistics.status, statistics.source_connected
                destination_connected = statistics.destination_connected
                listening, open_connections = statistics.listening, statistics.open_connections
                last_error = statistics.last_error
            elif child is not None and child.state == "running":
                status, connected = "forwarding", True  # running but slow to answer
                destination_connected = True
            else:
                status = "connecting-source"
            if not last_error and child is not None and child.restarts and child.last_exit:
                last_error = f"forwarder restarted after it {_past(child.last_exit)}"
        totals = add_incarnation(session.totals, session.figures.statistics)
        return fm.ForwardSessionState(
            identifier=session.id, name=session.name, labels=dict(create.labels),
            created=session.created, paused=record.paused, status=status,
            last_error=last_error,
            source=fm.ForwardEndpointState(url=create.source, connected=connected),
            destination=fm.ForwardEndpointState(url=create.destination,
                                                connected=destination_connected),
            configuration=create.configuration, listening=listening,
            open_connections=open_connections, total_connections=totals.connections,
            total_outbound_data=totals.outbound, total_inbound_data=totals.inbound,
            errors=totals.errors)

    async def _states(self, sessions: list[_Session]) -> list[fm.ForwardSessionState]:
        statistics = await asyncio.gather(*(self._statistics(s) for s in sessions))
        states = [self._state(s, f) for s, f in zip(sessions, statistics)]
        for state in states:
            self._note_signature(state.identifier, (
                state.paused, state.status, state.last_error, state.open_connections,
                state.total_connections, state.total_outbound_data, state.total_inbound_data))
        return states

    async def list(self, message: fm.ForwardList) -> fm.ForwardListReply:
        return fm.ForwardListReply(*await self._long_poll(message))

    # ------------------------------------------------------------------ commands

    async def _each(self, chosen: Selection, action) -> fm.ForwardAffected:
        return fm.ForwardAffected(await self._act(chosen, action))

    async def _restart(self, session: _Session) -> None:
        """Stop the session's supervisor (if any) and supervise it again from its record."""
        await self._stop(session)
        self.registry._supervise(session.record)

    async def _stop(self, session: _Session) -> None:
        await self._statistics(session)  # keep the last figures of the forwarder being stopped
        supervisor = self.registry.sessions.pop(session.id, None)
        if supervisor is not None:
            await supervisor.stop()
        session.totals = add_incarnation(session.totals, session.figures.statistics)
        session.figures = Figures()

    async def _pause(self, session: _Session) -> None:
        if session.record.paused:
            return
        session.record.paused = True
        persistence.save(self.paths.sessions, session.record)
        await self._restart(session)
        log.info("forward session paused", session=session.id)

    async def _resume(self, session: _Session) -> None:
        supervisor = self.registry.sessions.get(session.id)
        if not session.record.paused and supervisor is not None \
                and supervisor.status != "halted":
            return  # running (or restarting by itself): nothing to do
        relay = prompt_relay.relay_for_current_command()
        failure = None
        if relay is not None:
            try:
                await self._ask_ssh_questions(session.create, relay)
            except Refused as refusal:
                failure = refusal  # resumed all the same: the forwarder keeps trying
        session.record.paused = False
        persistence.save(self.paths.sessions, session.record)
        await self._restart(session)
        if failure is not None:
            raise Refused("unavailable", f"session {session.id} resumed but not connected: "
                                         f"{failure.message}")
        try:
            await self._wait_listening(session, _listen_timeout(session.create),
                                       first_failure=False)
        except Refused as refusal:
            raise Refused("unavailable", f"unable to resume session {session.id}: "
                                         f"{refusal.message}") from None
        log.info("forward session resumed", session=session.id)

    async def _terminate(self, session: _Session) -> None:
        await self._stop(session)
        persistence.delete(self.paths.sessions, session.id)
        self.sessions.pop(session.id, None)
        self._signatures.pop(session.id, None)
        log.info("forward session terminated", session=session.id)


def _past(exit_description: str) -> str:
    """How a forwarder's last exit reads after "forwarder restarted after it ...":
    ``was killed by SIGKILL``, ``exited with status 1``, ``failed to start: <reason>``."""
    if exit_description.startswith("killed"):
        return "was " + exit_description
    if exit_description.startswith("start failed"):
        return "failed to start: " + listen_failure(exit_description)
    return exit_description


def _listen_timeout(create: fm.ForwardCreate) -> float:
    remote = create.source.protocol != "local" or create.destination.protocol != "local"
    return REMOTE_LISTEN_TIMEOUT if remote else LISTEN_TIMEOUT
