"""The remote agent's endpoint service: one ``LocalEndpoint`` served through the tunnel.

The daemon's remote endpoint actor (``agent.remote_endpoint_actor``) opens the endpoint with
``EndpointOpen`` (the ``EndpointSettings`` fields); from then on the agent answers the endpoint
messages (``wire.messages.endpoint``) exactly as a local endpoint actor does
(``answer_endpoint``), and sends ``EndpointChanged`` (route-less, through ``notify``) whenever
its watcher reports changes and once after opening (changes may have been missed while no agent
ran).

Paths: a relative root, or one starting with ``~``, is resolved against the remote user's
home. The endpoint's data (digest cache, data-directory staging) lives under
``~/.mutagen-actors/endpoints`` (beside the agents directory; never inside an agent install,
which is replaced on upgrade). ``LocalEndpoint`` confines every path to its root and staging.

Failure rules: an endpoint message before ``EndpointOpen`` is refused (``not-open``); a second
``EndpointOpen`` replaces the first endpoint (stopping it); ``close()`` stops it (saving the
digest cache) when the tunnel ends.
"""

from __future__ import annotations

import asyncio
import os
from typing import Awaitable, Callable, Optional

from mutagen_actors.actors.sync.scan import ScanError
from mutagen_actors.wire.handling import NotHandled, Refused
from mutagen_actors.wire.messages import agent as am
from mutagen_actors.wire.messages import endpoint as m

from .compaction import REFERENCE_MISS, AgentSide, ReferenceMiss
from .endpoint import EndpointSettings, LocalEndpoint
from .memory import trim

DATA_DIRECTORY = ".mutagen-actors/endpoints"


def resolve_root(path: str, home: str) -> str:
    """The absolute root for ``path`` on the remote (pure): ``~`` and ``~/x`` are under ``home``,
    a relative path is relative to ``home``, an absolute one is kept (normalized)."""
    if not path or path == "~":
        return os.path.normpath(home)
    if path.startswith("~/"):
        return os.path.normpath(os.path.join(home, path[2:]))
    if path.startswith("~"):
        return os.path.normpath(os.path.expanduser(path))
    return os.path.normpath(os.path.join(home, path))


async def answer_endpoint(endpoint: LocalEndpoint, side: str, message):
    """Answer one endpoint request on ``endpoint`` (the same contract as
    ``agent.endpoint_actor.EndpointActor.handle``); ``NotHandled`` for anything else."""
    def check_epoch(epoch: str) -> None:
        if epoch != endpoint.epoch:
            raise Refused("stale", f"the {side} endpoint restarted since it was scanned")

    if isinstance(message, m.EndpointHello):
        return m.EndpointWelcome(endpoint.epoch, endpoint.watch_state)
    if isinstance(message, m.Scan):
        try:
            result = await endpoint.scan_async(message.full, message.fresh)
        except ScanError as error:
            raise Refused("scan-failed", str(error)) from None
        changed = (message.have_epoch, message.have_generation) != (endpoint.epoch,
                                                                   endpoint.generation)
        delta = None
        if changed and message.have_epoch == endpoint.epoch:
            delta = endpoint.delta_from(message.have_generation)
        return m.ScanReply(endpoint.epoch, endpoint.generation, changed,
                           result.root if changed and delta is None else None,
                           result.counts, result.problems, endpoint.watch_state, delta)
    if isinstance(message, m.StageBegin):
        check_epoch(message.epoch)
        return m.StageNeeds(await asyncio.to_thread(endpoint.needs, message.items))
    if isinstance(message, m.FileSizes):
        return m.Sizes(endpoint.sizes(message.paths))
    if isinstance(message, m.Supply):
        return m.Supplied(await asyncio.to_thread(endpoint.supply, message.requests,
                                                  message.max_bytes))
    if isinstance(message, m.StageChunks):
        completed, problems, refetch = await asyncio.to_thread(endpoint.receive_chunks,
                                                               message.chunks)
        return m.StageAck(completed, problems, refetch)
    if isinstance(message, m.Transition):
        check_epoch(message.epoch)
        result = await endpoint.transition_async(message.changes)
        trim()
        return m.TransitionReply(m.SideResult(result.results, result.problems,
                                              result.missing_staged))
    raise NotHandled


class EndpointService:
    """Serves ``EndpointOpen`` and the endpoint messages in one agent process.

    ``notify(message)`` sends a route-less message to the daemon (a coroutine function)."""

    def __init__(self, notify: Callable[[object], Awaitable[None]], *, home: Optional[str] = None,
                 log=None):
        import structlog

        self.notify = notify
        self.home = home or os.path.expanduser("~")
        self.log = log or structlog.get_logger("agent.endpoint")
        self.endpoint: Optional[LocalEndpoint] = None
        self.side = ""
        self._lock = asyncio.Lock()  # requests arrive concurrently; an endpoint does one at a time
        self._tasks: set[asyncio.Task] = set()
        self.compaction = AgentSide()  # references instead of repeated subtrees on the tunnel

    def _changed(self) -> None:
        task = asyncio.get_running_loop().create_task(self._send_changed())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_changed(self) -> None:
        try:
            await self.notify(m.EndpointChanged(self.side))
        except ConnectionError:
            pass  # the tunnel is gone: the next incarnation scans everything

    async def open(self, message: am.EndpointOpen) -> am.EndpointOpened:
        args = dict(message.settings)
        args["root"] = resolve_root(str(args.get("root", "")), self.home)
        args["data_directory"] = os.path.join(self.home, DATA_DIRECTORY)
        try:
            settings = EndpointSettings.from_args(args)
        except (TypeError, ValueError) as error:
            raise Refused("invalid-argument", f"endpoint settings: {error}") from None
        await self.close()
        self.compaction = AgentSide()
        self.side = settings.side
        self.log = self.log.bind(side=self.side, session=settings.session)
        endpoint = LocalEndpoint(settings, on_change=self._changed, log=self.log)
        await endpoint.start()
        self.endpoint = endpoint
        self.log.info("endpoint open", root=endpoint.root)
        if settings.watch_mode.value != "no-watch":
            self._changed()
        return am.EndpointOpened(endpoint.root, endpoint.epoch)

    async def handle(self, message):
        if isinstance(message, am.EndpointOpen):
            async with self._lock:
                return await self.open(message)
        if type(message).__module__ != m.__name__:
            raise NotHandled
        async with self._lock:
            if self.endpoint is None:
                raise Refused("not-open", "no endpoint is open in this agent")
            previous = self.endpoint.previous
            try:
                request = self.compaction.incoming(message, previous.root if previous else None)
            except ReferenceMiss as error:
                raise Refused(REFERENCE_MISS, str(error)) from None
            except ValueError as error:
                raise Refused("protocol", str(error)) from None
            reply = await answer_endpoint(self.endpoint, self.side, request)
            return self.compaction.outgoing(request, reply)

    async def close(self) -> None:
        endpoint, self.endpoint = self.endpoint, None
        if endpoint is not None:
            await endpoint.stop()
