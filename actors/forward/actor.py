"""The forwarder actor: one forwarding session's source listener and relay, in its own process.

Launch arguments (``ActorLaunch.args`` / ``ChildSpec.args``):

- ``source``: local endpoint text to listen on (``tcp:127.0.0.1:8080``, ``unix:/path``);
- ``destination``: local endpoint text to dial for each accepted connection;
- optional ``source_remote`` / ``destination_remote``: the remote the endpoint lives on (dict:
  ``protocol`` ``ssh``/``docker``, ``user``, ``host``, ``port``, ``environment``), absent for a
  local endpoint (``actors.forward.remote``: SSH channels, or the agent in a container); with
  ``cache_directory`` for the agent bundle and optional ``ssh_directory``. A remote source is
  reverse forwarding (the remote listens); both remote: bytes go through this process. Losing
  a remote's connection crashes the actor, so its supervisor restarts it (reconnecting);
- optional ``socket_overwrite_mode`` (``leave``/``overwrite``), ``socket_owner``,
  ``socket_group``, ``socket_permission_mode`` (octal text or int, default 0600) for a unix
  source, and ``dial_timeout`` (seconds, default 10).

``on_start`` parses the arguments and opens the listener before the actor reports *ready*, so
ready means listening. A bad argument or a listener that cannot be opened fails the start with
the one-line ``ForwardingError`` text (the supervisor's restart budget then halts the session
with that reason). A restarted incarnation reclaims the unix socket file its killed predecessor
left behind (a socket nobody listens on), even in ``leave`` mode. Requests:
``GetForwardingStatistics`` -> ``ForwardingStatistics``. A crash drops only this actor's
connections (the kernel closes its sockets).
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages.forward import ForwardingStatistics, GetForwardingStatistics

from .dialers import DEFAULT_DIAL_TIMEOUT, make_dialer
from .endpoints import (
    DEFAULT_SOCKET_PERMISSION_MODE,
    ForwardingError,
    parse_endpoint,
    socket_options,
)
from .listeners import open_listener
from .relay import Relay


class ForwarderActor(Actor):
    relay: Relay | None = None
    remotes: list = []
    _watchers: list = []
    _stopping = False

    async def on_start(self) -> None:
        _raise_file_limit()
        self._watchers = []
        args = self.context.args
        source_remote, destination_remote = args.get("source_remote"), args.get("destination_remote")
        if source_remote or destination_remote:
            from .remote import parse_remote_endpoint  # asyncssh only for remote sessions
        source = (parse_remote_endpoint(args["source"], listening=True) if source_remote
                  else parse_endpoint(args["source"], listening=True))
        destination = (parse_remote_endpoint(args["destination"], listening=False)
                       if destination_remote else parse_endpoint(args["destination"],
                                                                 listening=False))
        options = socket_options(
            args.get("socket_overwrite_mode", "leave"), args.get("socket_owner", ""),
            args.get("socket_group", ""),
            args.get("socket_permission_mode", DEFAULT_SOCKET_PERMISSION_MODE))
        timeout = float(args.get("dial_timeout", DEFAULT_DIAL_TIMEOUT))
        self.remotes = []
        try:
            if destination_remote:
                remote = await self._connect(destination_remote)
                dial = remote.dialer(destination, timeout)
            else:
                dial = make_dialer(destination, timeout)
            if source_remote:
                remote = await self._connect(source_remote)
                listener = await _listen_remote(remote, source,
                                                retry=self.context.launch.restarts > 0)
            else:
                listener = await open_listener(source, options,
                                               reclaim_stale=self.context.launch.restarts > 0)
        except BaseException:
            await self._close_remotes()
            raise
        log = self.log.bind(side="source")
        self.relay = Relay(listener, dial, log=log)
        self.relay.start()
        self.log.info("forwarding", listening=listener.describe(), destination=str(destination))

    async def _connect(self, remote: dict):
        from .remote import connect_remote

        side = await connect_remote(remote, cache_directory=self.context.args.get(
            "cache_directory") or _default_cache(), ssh_directory=self.context.args.get(
            "ssh_directory") or None)
        self.remotes.append(side)
        watcher = asyncio.ensure_future(side.wait_lost())
        watcher.add_done_callback(self._lost)
        self._watchers.append(watcher)
        return side

    def _lost(self, watcher) -> None:
        if watcher.cancelled() or self._stopping:
            return
        reason = watcher.exception() or watcher.result()
        self.log.warning("remote lost", reason=str(reason))
        os._exit(3)  # the supervisor restarts this forwarder, which reconnects

    async def _close_remotes(self) -> None:
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        for side in getattr(self, "remotes", []):
            try:
                await asyncio.wait_for(side.close(), 2)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass

    async def handle(self, message):
        if isinstance(message, GetForwardingStatistics):
            s = self.relay.statistics
            return ForwardingStatistics(self.relay.listener.describe(), s.open_connections,
                                        s.total_connections, s.outbound_bytes, s.inbound_bytes,
                                        s.errors, s.last_error)
        raise NotHandled

    async def on_stop(self) -> None:
        self._stopping = True
        if self.relay is not None:
            await self.relay.close()
        await self._close_remotes()


def _raise_file_limit(ceiling: int = 65536) -> None:
    """Each forwarded connection holds six descriptors (two sockets, two splice pipes): lift
    this process's soft limit to its hard limit (bounded), as servers usually do."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = ceiling if hard == resource.RLIM_INFINITY else min(hard, ceiling)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass


async def _listen_remote(remote, endpoint, *, retry: bool, patience: float = 3.0):
    """Listen on the remote. A restarted forwarder (``retry``) may find its killed
    predecessor's listener still held on the remote for a moment (the sshd or the old agent
    has not noticed yet): "address already in use" is retried for ``patience`` seconds."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            return await remote.listen(endpoint)
        except ForwardingError as error:
            if not retry or "in use" not in str(error) \
                    or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.1)


def _default_cache() -> str:
    """The agent bundle cache: under the daemon's data directory (this process inherits its
    environment), else a per-user temporary directory."""
    try:
        from mutagen_actors.supervisor.datadir import resolve

        return os.path.join(resolve().root, "agent-bundles")
    except Exception:  # noqa: BLE001 - any trouble: a private temporary place
        return os.path.join(tempfile.gettempdir(), f"mutagen-actors-bundles-{os.getuid()}")
