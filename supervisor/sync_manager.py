"""The daemon's synchronization sessions: create / list / flush / pause / resume / reset /
terminate (``wire.messages.sync``), persistence as ``SessionRecord`` of kind ``sync``.

One session = one ``SessionSupervisor`` (``one_for_one``) with children in this order: ``alpha``
and ``beta`` endpoints (``agent.endpoint_actor``), ``transitioner``, ``stager``, ``reconciler``
(last: it drives the cycle and needs the others). Every child has a stable mailbox address
(derived from the session id and the child id), so the others reconnect to a restarted child by
themselves; each actor reloads what it needs from disk (endpoints their digest cache, the
reconciler the archive), which is why restarting only the child that died is enough. A paused
session is supervised with no children at all.

Rules:
- Create validates everything itself (never trusting the CLI): local, ssh or docker URLs; local
  alpha and beta neither equal nor nested (after resolving symbolic links), name and labels
  (``identity``), setting words (``actors.sync.settings``), ignore patterns (``compile_ignores``).
  A root that does not exist yet is valid. Unless paused it then starts the session and answers
  once both endpoints are connected; the session's own endpoint actors make the first connect
  (no separate probe): the first failed connect attempt of a remote side (``connect_error`` of
  the reconciler's side state: a bad host key, an unreachable host, a remote without python3,
  a wrong container, refused credentials) refuses at once with ``"{side}: {reason}"``, and so
  does a connect not done within ``CONNECT_TIMEOUT`` (``REMOTE_CONNECT_TIMEOUT`` with a remote
  side: an agent may have to be installed), or a halted session; a refused create leaves
  nothing (record, archive, cache, staging, actors). Until it answers the session is in no
  command's selection (``list`` does not show it).
- Prompts (``prompt_relay``): when the CLI of a ``create`` or ``resume`` can answer questions,
  the daemon's connect for it relays the SSH questions (unknown host key, password) to that
  terminal; time spent answering does not count against the deadlines. At create the session's
  endpoint actors ask (every question, as OpenSSH: a wrong password is asked for again); the
  relay ends when the create answers, so a reconnect after a refusal never asks. ``resume`` of
  a session with a remote probes first (``_probe_remotes``: ``remote_probe``, a child process),
  and the session's actors reuse those answers: if the probe fails, the session is still resumed
  (it keeps reconnecting in the background, never prompting) and the command fails with the
  reason.
- Every command answers in bounded time: state is asked of the reconciler with a short deadline
  (``STATE_TIMEOUT``), falling back to the last state it gave.
- ``list`` with ``after_index`` is a long poll: the index moves whenever any session's state
  does (create, terminate, pause/resume or a new state revision of a reconciler).
- Data: ``sessions/<id>.json`` (record), ``archives/<id>.archive`` (ancestor),
  ``caches/<id>-<side>.cache``, ``staging/<id>-<side>/``. Terminate deletes all of them and
  leaves the synchronized files alone.
- Halts survive a daemon restart: a spent restart budget is recorded by the registry
  (``sessions``); a safety halt (``SAFETY_HALTS``) is recorded here when the reconciler's state
  shows it (and cleared when it no longer does). A session restored with either starts halted,
  no actors running, with the same status and last error; ``resume`` starts it afresh (the
  reconciler then runs its safety checks again on a full scan). The daemon looks at every
  running session's state at least every ``HALT_CHECK_INTERVAL`` seconds (and at each command);
  a safety halt it never saw before it died is found again by the reconciler's first cycle,
  unless the root changed meanwhile.
"""

from __future__ import annotations

import asyncio
try:  # the builtin module: importing hashlib would load OpenSSL's libcrypto (~3.5 MB resident)
    from _blake2 import blake2b
except ImportError:  # an interpreter built without it
    from hashlib import blake2b
import os
import shutil
import time
from typing import Optional

import msgspec
import structlog

from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.settings import (
    DEFAULT_COMPRESSION,
    HashAlgorithm,
    IgnoreSyntax,
    Mode,
    PermissionsMode,
    ScanMode,
    StageMode,
    SymlinkMode,
    WatchMode,
)
from mutagen_actors.actors.sync.staging import staging_directory
from mutagen_actors.wire.errors import RemoteError, RequestTimeout
from mutagen_actors.wire.handling import NotHandled, Refused
from mutagen_actors.wire.messages import endpoint as em
from mutagen_actors.wire.messages import sync as sm
from mutagen_actors.wire.sockets import DealerClient

from . import identity, persistence, prompt_relay
from .actor_process import PRELOAD_MODULES
from .child_spec import ChildSpec, idle_exit_setting
from .manager_common import RecordFields, SessionManagerBase, validate_identity
from .persistence import SessionRecord
from .restart import Strategy
from .sessions import KINDS, Registry
from .wake_service import MAILBOX as WAKE_MAILBOX

KIND = "sync"
ENDPOINT_ACTOR = "mutagen_actors.agent.endpoint_actor:EndpointActor"
REMOTE_ENDPOINT_ACTOR = "mutagen_actors.agent.remote_endpoint_actor:RemoteEndpointActor"
REMOTE_PROTOCOLS = ("ssh", "docker")
PROBE_TIMEOUT = 60.0  # connect (the transport's own deadline) + agent install + start;
# both sides at once, so with CONNECT_TIMEOUT it stays within the CLI's deadline (120 s)
TRANSITIONER_ACTOR = "mutagen_actors.actors.syncsession.transitioner:TransitionerActor"
STAGER_ACTOR = "mutagen_actors.actors.syncsession.stager:StagerActor"
RECONCILER_ACTOR = "mutagen_actors.actors.syncsession.reconciler:ReconcilerActor"
CHILDREN = ("alpha", "beta", "transitioner", "stager", "reconciler")
STATE_TIMEOUT = 0.5
CONNECT_TIMEOUT = 30.0
# A create with a remote side: as long as the probe and the connect after it took before.
REMOTE_CONNECT_TIMEOUT = PROBE_TIMEOUT + CONNECT_TIMEOUT
FLUSH_TIMEOUT = 3600.0
POLL_INTERVAL = 0.02
HALT_CHECK_INTERVAL = 5.0
SAFETY_HALTS = tuple(status for status in sm.STATUS_DESCRIPTIONS
                     if status.startswith("halted-on-") and status != "halted-on-actor-failure")
HANDLED = (sm.SyncCreate, sm.SyncList, sm.SyncFlush, sm.SyncPause, sm.SyncResume, sm.SyncReset,
           sm.SyncTerminate)

log = structlog.get_logger("supervisor.sync")

_paths = None  # datadir.Paths of this daemon, set by SyncManager (child specs need mailboxes)


# ---------------------------------------------------------------------------- pure helpers


def mailbox_token(session: str, child: str) -> str:
    """A stable 16-hex-character mailbox name for one child of one session."""
    return blake2b(f"{session}/{child}".encode(), digest_size=8).hexdigest()


def _choice(kind, text: str, what: str, default):
    return kind.parse(text, what) if text else default


def endpoint_settings(configuration: sm.SyncConfiguration, side: str) -> dict:
    """The resolved settings of one side (its override, else the session-wide value, else the
    default), as the endpoint actor's arguments."""
    def pick(field: str):
        return side_value(configuration, side, field)

    return {
        "hash": _choice(HashAlgorithm, configuration.hash, "hash algorithm",
                        HashAlgorithm.XXH128).value,
        "ignores": list(configuration.ignores),
        "ignore_syntax": _choice(IgnoreSyntax, configuration.ignore_syntax, "ignore syntax",
                                 IgnoreSyntax.MUTAGEN).value,
        "ignore_vcs": bool(configuration.ignore_vcs),
        "symlink_mode": _choice(SymlinkMode, configuration.symlink_mode, "symbolic link mode",
                                SymlinkMode.PORTABLE).value,
        "permissions_mode": _choice(PermissionsMode, configuration.permissions_mode,
                                    "permissions mode", PermissionsMode.PORTABLE).value,
        "watch_mode": _choice(WatchMode, pick("watch_mode"), "watch mode",
                              WatchMode.PORTABLE).value,
        "watch_polling_interval": pick("watch_polling_interval"),
        "scan_mode": _choice(ScanMode, pick("scan_mode"), "scan mode", ScanMode.ACCELERATED).value,
        "stage_mode": _choice(StageMode, pick("stage_mode"), "stage mode",
                              StageMode.DATA_DIRECTORY).value,
        "default_file_mode": pick("default_file_mode"),
        "default_directory_mode": pick("default_directory_mode"),
        "default_owner": pick("default_owner"),
        "default_group": pick("default_group"),
        "max_entry_count": pick("max_entry_count"),
        "max_staging_file_size": pick("max_staging_file_size"),
    }


def side_value(configuration: sm.SyncConfiguration, side: str, field: str):
    """An endpoint-capable setting of ``side``: its own value, else the session-wide one (None or
    empty when neither is set)."""
    value = getattr(getattr(configuration, side), field)
    return value if value else getattr(configuration.endpoint, field)


def compression_setting(configuration: sm.SyncConfiguration, side: str) -> str:
    """The tunnel compression to a remote ``side``: its own setting, else the session-wide one,
    else lz4 (``none`` or ``lz4``; local endpoints have no tunnel and are never compressed)."""
    return side_value(configuration, side, "compression") or DEFAULT_COMPRESSION


def validate_configuration(configuration: sm.SyncConfiguration) -> None:
    """Raise ValueError naming the first bad setting."""
    _choice(Mode, configuration.mode, "synchronization mode", Mode.TWO_WAY_SAFE)
    for side in ("alpha", "beta"):
        settings = endpoint_settings(configuration, side)
        for key in ("watch_polling_interval", "max_entry_count", "max_staging_file_size"):
            if settings[key] < 0:
                raise ValueError(f"invalid {key.replace('_', ' ')}: {settings[key]} is negative")
        for key in ("default_file_mode", "default_directory_mode"):
            if not 0 <= settings[key] <= 0o7777:
                raise ValueError(f"invalid {key.replace('_', ' ')} {settings[key]:o}")
    compile_ignores(list(configuration.ignores),
                    _choice(IgnoreSyntax, configuration.ignore_syntax, "ignore syntax",
                            IgnoreSyntax.MUTAGEN),
                    bool(configuration.ignore_vcs))


def _inside(parent: str, child: str) -> bool:
    return child.startswith(parent.rstrip("/") + "/") or parent == "/"


def _remote_place(url: sm.EndpointUrl) -> tuple:
    return (url.protocol, url.user, url.host, url.port)


def validate_roots(alpha: sm.EndpointUrl, beta: sm.EndpointUrl) -> tuple[str, str]:
    """Both roots: local ones as absolute, normalized paths, remote ones (ssh, docker) as given
    (the agent resolves them against the remote home); ValueError for an unknown protocol, an
    empty remote path, or local roots that are equal or nested (remote roots on the same remote
    must differ)."""
    remote = [url.protocol in REMOTE_PROTOCOLS for url in (alpha, beta)]
    for side, url in (("alpha", alpha), ("beta", beta)):
        if url.protocol not in ("local", *REMOTE_PROTOCOLS):
            raise ValueError(f"{side}: unknown endpoint protocol {url.protocol!r}")
        if url.protocol in REMOTE_PROTOCOLS and not url.path:
            raise ValueError(f"{side}: the {url.protocol} URL has no path")
        if url.protocol in REMOTE_PROTOCOLS and not url.host:
            raise ValueError(f"{side}: the {url.protocol} URL has no host")
    if any(remote):
        if all(remote) and _remote_place(alpha) == _remote_place(beta) and \
                os.path.normpath(alpha.path) == os.path.normpath(beta.path):
            raise ValueError(f"alpha and beta are the same path ({alpha.path})")
        return tuple(url.path if is_remote else _local_root(side, url)
                     for side, url, is_remote in (("alpha", alpha, remote[0]),
                                                  ("beta", beta, remote[1])))
    roots = []
    for side, url in (("alpha", alpha), ("beta", beta)):
        if not url.path or not os.path.isabs(url.path):
            raise ValueError(f"{side}: the path must be absolute (got {url.path!r})")
        roots.append(os.path.normpath(url.path))
    resolved = [os.path.realpath(root) for root in roots]
    if resolved[0] == resolved[1]:
        raise ValueError(f"alpha and beta are the same path ({roots[0]})")
    if _inside(resolved[1], resolved[0]):
        raise ValueError(f"alpha ({roots[0]}) is inside beta ({roots[1]})")
    if _inside(resolved[0], resolved[1]):
        raise ValueError(f"beta ({roots[1]}) is inside alpha ({roots[0]})")
    return roots[0], roots[1]


def _local_root(side: str, url: sm.EndpointUrl) -> str:
    if not url.path or not os.path.isabs(url.path):
        raise ValueError(f"{side}: the path must be absolute (got {url.path!r})")
    return os.path.normpath(url.path)


def connect_failure(progress: em.SessionProgress) -> Optional[tuple[str, str]]:
    """``(side, reason)`` of the first side (alpha first) that is not connected and whose
    connect attempt failed (its ``connect_error``), else None."""
    for side in ("alpha", "beta"):
        state = getattr(progress, side)
        if state.connect_error and not state.connected:
            return side, state.connect_error
    return None


def not_connected(progress: Optional[em.SessionProgress], timeout: float) -> str:
    """The refusal of a connect that took longer than ``timeout``: which sides, and the
    session's last error (what a remote link was doing, e.g. "connecting to host: Installing
    agent...")."""
    sides = [side for side in ("alpha", "beta")
             if progress is None or not getattr(progress, side).connected]
    where = " and ".join(sides) if progress is not None else "the endpoints"
    text = f"unable to connect to {where} within {timeout:g} s"
    if progress is not None and progress.last_error:
        text += f" ({progress.last_error})"
    return text


def _create_message(record: SessionRecord) -> sm.SyncCreate:
    return msgspec.convert(record.spec["create"], sm.SyncCreate)


def sync_specs(record: SessionRecord) -> list[ChildSpec]:
    """Child specs of a sync session (none while it is paused)."""
    if record.paused:
        return []
    paths = _paths
    try:
        create = _create_message(record)
    except (KeyError, TypeError, msgspec.ValidationError) as error:
        log.error("sync session record unusable; not started", session=record.id,
                  error=str(error))
        return []
    configuration = create.configuration
    mailbox = {child: paths.mailbox(mailbox_token(record.id, child)) for child in CHILDREN}
    specs = []
    for side, url in (("alpha", create.alpha), ("beta", create.beta)):
        args = {**endpoint_settings(configuration, side), "root": url.path, "session": record.id,
                "side": side, "data_directory": paths.root, "notify": mailbox["reconciler"]}
        actor = ENDPOINT_ACTOR
        if url.protocol in REMOTE_PROTOCOLS:  # relays to a LocalEndpoint in the remote agent
            actor = REMOTE_ENDPOINT_ACTOR
            args.update(protocol=url.protocol, user=url.user, host=url.host, port=url.port,
                        environment=dict(url.environment),
                        prompts=paths.mailbox(prompt_relay.MAILBOX_TOKEN),
                        compression=compression_setting(configuration, side))
        specs.append(ChildSpec(side, actor, args, start_timeout=120.0,
                               mailbox=mailbox_token(record.id, side)))
    peers = {"alpha": mailbox["alpha"], "beta": mailbox["beta"]}
    # Stager and transitioner work only during a cycle: on demand (hibernating while idle, woken
    # by the reconciler through the daemon's wake mailbox; docs/architecture.md).
    idle_exit = idle_exit_setting()
    specs.append(ChildSpec("transitioner", TRANSITIONER_ACTOR, dict(peers),
                           mailbox=mailbox_token(record.id, "transitioner"), on_demand=True,
                           idle_exit=idle_exit))
    specs.append(ChildSpec("stager", STAGER_ACTOR, dict(peers),
                           mailbox=mailbox_token(record.id, "stager"), on_demand=True,
                           idle_exit=idle_exit))
    no_watch = all(endpoint_settings(configuration, side)["watch_mode"] == "no-watch"
                   for side in ("alpha", "beta"))
    specs.append(ChildSpec("reconciler", RECONCILER_ACTOR, {
        **peers, "stager": mailbox["stager"], "transitioner": mailbox["transitioner"],
        "supervisor": paths.mailbox(WAKE_MAILBOX),
        "session": record.id, "data_directory": paths.root,
        "mode": configuration.mode or Mode.TWO_WAY_SAFE.value, "no_watch": no_watch,
        "phantoms": (configuration.ignore_syntax or "mutagen") == IgnoreSyntax.DOCKER.value,
    }, mailbox=mailbox_token(record.id, "reconciler")))
    return specs


KINDS[KIND] = (sync_specs, Strategy.ONE_FOR_ONE)
# Import the sync actors once in the fork server: each session's five actors then share that
# memory copy-on-write instead of importing the sync core privately (measured: ~9 MB each).
PRELOAD_MODULES.extend(cls.partition(":")[0] for cls in (
    ENDPOINT_ACTOR, TRANSITIONER_ACTOR, STAGER_ACTOR, RECONCILER_ACTOR))


# ---------------------------------------------------------------------------- the manager


class _Session(RecordFields):
    """What the daemon keeps about one sync session besides its supervisor."""

    def __init__(self, record: SessionRecord):
        self.record = record
        self.create = _create_message(record)
        self.client: Optional[DealerClient] = None
        self.progress: Optional[em.SessionProgress] = None

    def close_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None


class _AskEachTime:
    """The prompter the session's endpoint actors get during a create (``PromptService`` calls
    ``replay``): every question goes to the terminal, none is answered from memory. At create
    nothing asked before them (no probe), and a refused password must be asked for again, as
    OpenSSH does, not replayed. ``failure``: the relay's (why the last question got no
    answer)."""

    def __init__(self, relay: prompt_relay.TerminalRelay):
        self.relay = relay

    @property
    def failure(self) -> str:
        return self.relay.failure

    async def replay(self, kind: str, message: str, echo: bool) -> Optional[str]:
        return await self.relay(kind, message, echo)


class SyncManager(SessionManagerBase):
    def __init__(self, registry: Registry):
        global _paths
        self.registry = registry
        self.runtime = registry.runtime
        self.paths = registry.runtime.paths
        _paths = self.paths
        self.prompts = prompt_relay.service(self.runtime)
        self.sessions: dict[str, _Session] = {}
        self._creating: set[str] = set()  # sessions whose create has not answered yet
        self.index = 1
        self._signatures: dict[str, tuple] = {}
        for record in persistence.load_all(self.paths.sessions):
            if record.kind == KIND:
                try:
                    self.sessions[record.id] = _Session(record)
                except (KeyError, TypeError, msgspec.ValidationError) as error:
                    log.error("unreadable sync session record", session=record.id,
                              error=str(error))
        # Ended with the daemon's event loop.
        self._halt_checks = asyncio.get_running_loop().create_task(self._check_halts())

    async def _check_halts(self) -> None:
        """Ask each running session's state now and then, so a safety halt is on record soon
        after it happens even if no command asks (``_progress`` records it)."""
        while True:
            await asyncio.sleep(HALT_CHECK_INTERVAL)
            try:
                await asyncio.gather(*(self._progress(s) for s in list(self.sessions.values())))
            except Exception:  # noqa: BLE001 - a bug here must not end the checks
                log.exception("session state check failed")

    async def handle(self, message):
        try:
            if isinstance(message, sm.SyncCreate):
                return await self.create(message)
            if isinstance(message, sm.SyncList):
                return await self.list(message)
            if isinstance(message, sm.SyncFlush):
                return await self.flush(message)
            if isinstance(message, sm.SyncPause):
                return await self._each(message.selection, self._pause)
            if isinstance(message, sm.SyncResume):
                return await self._each(message.selection, self._resume)
            if isinstance(message, sm.SyncReset):
                return await self._each(message.selection, self._reset)
            if isinstance(message, sm.SyncTerminate):
                return await self._each(message.selection, self._terminate)
        except ValueError as error:
            raise Refused("invalid-argument", str(error)) from None
        raise NotHandled

    # ------------------------------------------------------------------ create

    def _select(self, chosen, default_all: bool = False) -> list:
        """As ``SessionManagerBase._select``, without sessions whose create is still waiting."""
        return [session for session in super()._select(chosen, default_all)
                if session.id not in self._creating]

    async def create(self, message: sm.SyncCreate) -> sm.SyncCreated:
        alpha_root, beta_root = validate_roots(message.alpha, message.beta)
        validate_identity(message.name, message.labels)
        validate_configuration(message.configuration)
        relay = prompt_relay.relay_for_current_command()
        message = msgspec.structs.replace(
            message, alpha=msgspec.structs.replace(message.alpha, path=alpha_root),
            beta=msgspec.structs.replace(message.beta, path=beta_root))
        record = SessionRecord(id=identity.new_identifier("sync"), name=message.name, kind=KIND,
                               created=time.time(),
                               spec={"create": msgspec.to_builtins(message)},
                               paused=message.paused)
        persistence.save(self.paths.sessions, record)
        session = self.sessions[record.id] = _Session(record)
        remote = any(url.protocol in REMOTE_PROTOCOLS for url in (message.alpha, message.beta))
        failure = None
        self._creating.add(record.id)
        try:
            with self.prompts.waiting(record.id, _AskEachTime(relay) if relay else None):
                supervisor = self.registry._supervise(record)
                if not record.paused:
                    try:
                        await self._wait_connected(
                            session, REMOTE_CONNECT_TIMEOUT if remote else CONNECT_TIMEOUT,
                            relay, refuse_failed=True)
                    except Refused as refusal:
                        failure = refusal
            if failure is not None:  # the relay ended first: a reconnect meanwhile asks nobody
                log.info("sync session not created", session=record.id, error=failure.message)
                await self._terminate(session)
                raise failure
        finally:
            self._creating.discard(record.id)
        self.index += 1
        log.info("sync session created", session=record.id, alpha=alpha_root, beta=beta_root,
                 paused=record.paused, supervisor=supervisor.status)
        return sm.SyncCreated(record.id)

    async def _probe_remotes(self, message: sm.SyncCreate,
                             relay: prompt_relay.TerminalRelay | None = None) -> None:
        """Connect once to each remote endpoint (installing its agent if needed): ``resume``'s
        check, so a bad host key, an unreachable host or a remote without python3 is a clear
        failure of the command. ``relay``: the waiting command's terminal, asked the connect's
        questions (the session's actors then reuse its answers)."""
        # In a child process (``remote_probe``): the daemon never loads asyncssh itself.
        from .remote_probe import ProbeFailed, run_probe
        from .urls import Url

        async def probe(side: str, url: sm.EndpointUrl) -> None:
            target = Url(url.protocol, url.user, url.host, url.port, url.path,
                         dict(url.environment))
            steps: list[str] = []
            clock = relay.clock if relay is not None else None
            try:
                await run_probe("endpoint", target, data_directory=self.paths.root,
                                log_path=self.paths.log, side=side, steps=steps,
                                prompter=clock, timeout=PROBE_TIMEOUT)
            except ProbeFailed as error:
                text = relay.explain(str(error)) if relay is not None else str(error)
                raise Refused("unavailable", f"{side}: {text}") from None
            except asyncio.TimeoutError:
                where = f" (stopped at: {steps[-1]})" if steps else ""
                raise Refused("unavailable", f"{side}: unable to start the agent on "
                                             f"{url.host} within {PROBE_TIMEOUT:g} s{where}"
                              ) from None

        sides = [(side, url) for side, url in (("alpha", message.alpha), ("beta", message.beta))
                 if url.protocol in REMOTE_PROTOCOLS]
        results = await asyncio.gather(*(probe(side, url) for side, url in sides),
                                       return_exceptions=True)
        for result in results:  # alpha's failure first
            if isinstance(result, BaseException):
                raise result

    async def _wait_connected(self, session: _Session, timeout: float,
                              relay: prompt_relay.TerminalRelay | None = None,
                              refuse_failed: bool = False) -> None:
        """Until both endpoints are connected; ``Refused`` past ``timeout`` (not counting the
        time ``relay``'s questions were open) or when the session halted, and with
        ``refuse_failed`` as soon as a side's connect attempt failed (``connect_failure``)."""
        start = time.monotonic()
        progress = None
        while True:
            deadline = start + timeout + (relay.clock.spent() if relay is not None else 0.0)
            supervisor = self.registry.sessions.get(session.id)
            if supervisor is not None and supervisor.status == "halted":
                raise Refused("unavailable", f"unable to start the session: "
                                             f"{supervisor.halt_reason}")
            progress = await self._progress(session) or progress
            if progress is not None and progress.alpha.connected and progress.beta.connected:
                return
            if refuse_failed and progress is not None:
                failure = connect_failure(progress)
                if failure is not None:
                    side, text = failure
                    raise Refused("unavailable", f"{side}: "
                                                 f"{relay.explain(text) if relay else text}")
            if time.monotonic() > deadline:
                raise Refused("unavailable", not_connected(progress, timeout))
            await asyncio.sleep(POLL_INTERVAL)

    async def _wait_connected_quietly(self, session: _Session,
                                      relay: prompt_relay.TerminalRelay | None = None) -> None:
        """Resume and reset answer once connected, or with the session still connecting."""
        try:
            await self._wait_connected(session, CONNECT_TIMEOUT, relay)
        except Refused as refusal:
            log.warning("session not connected yet", session=session.id, error=refusal.message)

    # ------------------------------------------------------------------ state

    async def _progress(self, session: _Session,
                        timeout: float = STATE_TIMEOUT) -> Optional[em.SessionProgress]:
        """The reconciler's current state (None if it did not answer in time)."""
        if session.record.paused:
            return None
        supervisor = self.registry.sessions.get(session.id)
        if supervisor is None or supervisor.status == "halted":
            return None
        if session.client is None:
            address = self.paths.mailbox(mailbox_token(session.id, "reconciler"))
            session.client = DealerClient(self.runtime.zmq_context, address, log=log)
        try:
            progress = await session.client.request(em.GetSessionState(), timeout=timeout)
        except (RequestTimeout, RemoteError, ConnectionError):
            return None
        session.progress = progress
        self._record_safety_halt(session, progress)
        return progress

    def _record_safety_halt(self, session: _Session, progress: em.SessionProgress) -> None:
        """Keep the record's halt in step with a safety halt the reconciler reports."""
        record = session.record
        if progress.status in SAFETY_HALTS:
            if (record.halted, record.halt_reason) != (progress.status, progress.last_error):
                persistence.save_halt(self.paths.sessions, record, progress.status,
                                      progress.last_error)
        elif record.halted in SAFETY_HALTS:
            persistence.save_halt(self.paths.sessions, record, "")

    def _state(self, session: _Session, progress: Optional[em.SessionProgress]) -> sm.SyncSessionState:
        create = session.create
        record = session.record
        alpha = sm.EndpointState(url=create.alpha)
        beta = sm.EndpointState(url=create.beta)
        status, last_error, cycles, conflicts = "disconnected", "", 0, []
        supervisor = self.registry.sessions.get(session.id)
        if supervisor is not None and supervisor.status == "halted":
            if record.halted in SAFETY_HALTS:  # restored after a daemon restart
                status, last_error = record.halted, record.halt_reason
            else:
                status, last_error = "halted-on-actor-failure", supervisor.halt_reason
        elif not record.paused:
            progress = progress or session.progress
            if progress is not None:
                status, last_error = progress.status, progress.last_error
                cycles, conflicts = progress.successful_cycles, progress.conflicts
                alpha = msgspec.structs.replace(progress.alpha, url=create.alpha)
                beta = msgspec.structs.replace(progress.beta, url=create.beta)
        return sm.SyncSessionState(
            identifier=session.id, name=session.name, labels=dict(create.labels),
            created=session.created, paused=record.paused, status=status,
            successful_cycles=cycles, last_error=last_error, conflicts=conflicts,
            alpha=alpha, beta=beta, configuration=create.configuration)

    async def _states(self, sessions: list[_Session]) -> list[sm.SyncSessionState]:
        progresses = await asyncio.gather(*(self._progress(s) for s in sessions))
        states = [self._state(s, p) for s, p in zip(sessions, progresses)]
        for session, progress, state in zip(sessions, progresses, states):
            self._note_signature(session.id, (state.paused, state.status,
                                              progress.revision if progress else -1))
        return states

    async def list(self, message: sm.SyncList) -> sm.SyncListReply:
        return sm.SyncListReply(*await self._long_poll(message))

    # ------------------------------------------------------------------ commands

    async def _each(self, chosen: sm.Selection, action) -> sm.SyncAffected:
        return sm.SyncAffected(await self._act(chosen, action))

    async def _restart(self, session: _Session) -> None:
        """Stop the session's supervisor (if any) and supervise it again from its record."""
        session.close_client()
        supervisor = self.registry.sessions.pop(session.id, None)
        if supervisor is not None:
            await supervisor.stop()
        session.progress = None
        self.registry._supervise(session.record)

    async def _pause(self, session: _Session) -> None:
        if session.record.paused:
            return
        session.record.paused = True
        persistence.save(self.paths.sessions, session.record)
        await self._restart(session)

    async def _resume(self, session: _Session) -> None:
        supervisor = self.registry.sessions.get(session.id)
        if session.record.paused or supervisor is None or supervisor.status == "halted":
            relay = prompt_relay.relay_for_current_command()
            failure = None
            if relay is not None and any(url.protocol in REMOTE_PROTOCOLS for url in
                                         (session.create.alpha, session.create.beta)):
                try:
                    await self._probe_remotes(session.create, relay)
                except Refused as refusal:
                    failure, relay = refusal, None  # resumed all the same, never prompting
            session.record.paused = False
            persistence.save(self.paths.sessions, session.record)
            with self.prompts.waiting(session.id, relay):
                await self._restart(session)
                await self._wait_connected_quietly(session, relay)
            if failure is not None:
                raise Refused(failure.code, f"session {session.id} resumed but not connected: "
                                            f"{failure.message}")
            return
        if session.client is None:
            await self._progress(session)
        try:
            await session.client.request(em.ClearHalt(), timeout=5.0)
        except (RequestTimeout, RemoteError, ConnectionError) as error:
            raise Refused("unavailable", f"unable to resume session {session.id}: {error}")
        if session.record.halted:
            persistence.save_halt(self.paths.sessions, session.record, "")

    async def _reset(self, session: _Session) -> None:
        from mutagen_actors.actors.syncsession import archive

        session.close_client()
        supervisor = self.registry.sessions.pop(session.id, None)
        if supervisor is not None:
            await supervisor.stop()
        archive.delete(archive.archive_path(self.paths.root, session.id))
        session.progress = None
        self.registry._supervise(session.record)
        if not session.record.paused:
            await self._wait_connected_quietly(session)

    async def _terminate(self, session: _Session) -> None:
        from mutagen_actors.actors.syncsession import archive

        session.close_client()
        supervisor = self.registry.sessions.pop(session.id, None)
        if supervisor is not None:
            await supervisor.stop()
        persistence.delete(self.paths.sessions, session.id)
        archive.delete(archive.archive_path(self.paths.root, session.id))
        for side, url in (("alpha", session.create.alpha), ("beta", session.create.beta)):
            if url.protocol in REMOTE_PROTOCOLS:
                continue  # the remote staging is emptied by each transition; caches are small
            settings = endpoint_settings(session.create.configuration, side)
            try:
                os.unlink(os.path.join(self.paths.root, "caches", f"{session.id}-{side}.cache"))
            except FileNotFoundError:
                pass
            # The configured store, and the in-root one an endpoint picks instead when the data
            # directory is on another filesystem (agent.endpoint.same_filesystem_stage_mode).
            for mode in {settings["stage_mode"], StageMode.INTERNAL}:
                shutil.rmtree(staging_directory(mode, root=url.path, session=session.id,
                                                side=side, data_directory=self.paths.root),
                              ignore_errors=True)
        self.sessions.pop(session.id, None)
        self._signatures.pop(session.id, None)
        log.info("sync session terminated", session=session.id)

    async def flush(self, message: sm.SyncFlush) -> sm.SyncAffected:
        sessions = self._select(message.selection)
        for session in sessions:
            if session.record.paused:
                raise Refused("paused", "session is paused")
        tickets = []
        for session in sessions:
            if await self._progress(session) is None:
                await self._wait_connected_quietly(session)
            if await self._progress(session) is None:
                raise Refused("unavailable", "session is not currently able to synchronize")
            try:
                ticket = await session.client.request(em.SessionFlush(), timeout=5.0)
            except RemoteError as error:
                raise Refused("unavailable", error.message) from None
            except (RequestTimeout, ConnectionError):
                raise Refused("unavailable", "session is not currently able to synchronize")
            tickets.append((session, ticket.ticket))
        if not message.skip_wait:
            for session, ticket in tickets:
                await self._wait_flush(session, ticket)
        return sm.SyncAffected([s.id for s in sessions])

    async def _wait_flush(self, session: _Session, ticket: int) -> None:
        deadline = time.monotonic() + FLUSH_TIMEOUT
        silent_since = None
        while time.monotonic() < deadline:
            if session.id not in self.sessions or session.record.paused:
                raise Refused("unavailable", "session stopped while waiting for the flush")
            progress = await self._progress(session)
            if progress is None:
                silent_since = silent_since or time.monotonic()
                if time.monotonic() - silent_since > 10.0:
                    raise Refused("unavailable", "session stopped answering during the flush")
            else:
                silent_since = None
                if progress.flush_completed >= ticket:
                    return
                if progress.flush_failed >= ticket:
                    raise Refused("failed", f"synchronization cycle failed: "
                                            f"{progress.flush_error}")
            await asyncio.sleep(POLL_INTERVAL)
        raise Refused("unavailable", "flush did not complete in time")
