"""The forwarder actor: one forwarding session's source listener and relay, in its own process.

Launch arguments (``ActorLaunch.args`` / ``ChildSpec.args``):

- ``source``: local endpoint text to listen on (``tcp:127.0.0.1:8080``, ``unix:/path``);
- ``destination``: local endpoint text to dial for each accepted connection;
- optional ``source_remote`` / ``destination_remote``: the remote the endpoint lives on (dict:
  ``protocol`` ``ssh``/``docker``, ``user``, ``host``, ``port``, ``environment``), absent for a
  local endpoint (``actors.forward.remote``: SSH channels, or our agent in a container or, for
  a unix listener, on the SSH host); with ``cache_directory`` for the agent bundle and optional
  ``ssh_directory``. A remote source is reverse forwarding (the remote listens, with the socket
  options below); both remote: bytes go through this process;
- optional ``socket_overwrite_mode`` (``leave``/``overwrite``), ``socket_owner``,
  ``socket_group``, ``socket_permission_mode`` (octal text or int, default 0600) for a unix
  source, local or remote, and ``dial_timeout`` (seconds, default 10).

``on_start`` parses the arguments and opens a local listener before the actor reports
*ready*. A bad argument or a local listener that cannot be opened fails the start with the
one-line ``ForwardingError`` text (the supervisor's restart budget then halts the session with
that reason). Remote sides (``actors.forward.links``): the first incarnation of a session
(``launch.restarts == 0``: create, resume, daemon start) connects them (and listens on a
remote source) before ready and fails its start with the reason, so ``create`` reports a bad
host or a taken remote address at once; from then on a remote that is lost or down is
reconnected with back-off (0.5 s doubling to 5 s) for as long as the session runs, the local
listener staying open (its connections are refused with "not connected" meanwhile); a
restarted incarnation starts in that mode. The status says which side is being connected and
why (``ForwardingStatistics.status``/``last_error``). A restarted incarnation reclaims the
unix socket file its killed predecessor left behind (a socket nobody listens on), even in
``leave`` mode, locally or on the remote. Requests: ``GetForwardingStatistics`` ->
``ForwardingStatistics``. A crash drops only this actor's connections (the kernel closes its
sockets).
"""

from __future__ import annotations

import os
import resource
import tempfile

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages.forward import ForwardingStatistics, GetForwardingStatistics

from .dialers import DEFAULT_DIAL_TIMEOUT, make_dialer
from .endpoints import (
    DEFAULT_SOCKET_PERMISSION_MODE,
    parse_endpoint,
    socket_options,
)
from .links import RemoteLink, RemoteListener, remote_dialer, session_status
from .listeners import open_listener
from .relay import Relay
from .remote import describe_remote


class ForwarderActor(Actor):
    relay: Relay | None = None
    links: list = []

    async def on_start(self) -> None:
        _raise_file_limit()
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
        restarted = self.context.launch.restarts > 0
        self.links = []
        self.source_link = self.destination_link = None
        if destination_remote:
            link = self.destination_link = self._link("destination", destination_remote)
            dial = remote_dialer(link, destination, timeout)
        else:
            dial = make_dialer(destination, timeout)
        if source_remote:
            listener = RemoteListener(f"{source} on {describe_remote(source_remote)}")

            async def listen(side):
                # a reconnection may find the socket file of a listener that died with the
                # remote's agent (container stopped): reclaim it, as after a restart
                reclaim = restarted or self.source_link.connections > 0
                listener.attach(await side.listen(source, options, reclaim=reclaim))

            self.source_link = self._link("source", source_remote, on_up=listen,
                                          on_down=listener.detach)
        else:
            listener = await open_listener(source, options, reclaim_stale=restarted)
        try:
            if not restarted:
                for link in self.links:
                    await link.connect_once()
        except BaseException:
            listener.close()
            await self._close_links()
            raise
        for link in self.links:
            link.start()
        self.relay = Relay(listener, dial, log=self.log.bind(side="source"))
        self.relay.start()
        self.log.info("forwarding", listening=listener.describe() or str(source),
                      destination=str(destination))

    def _link(self, role: str, remote: dict, **hooks) -> RemoteLink:
        from .remote import connect_remote

        async def connect():
            return await connect_remote(
                remote, cache_directory=self.context.args.get("cache_directory")
                or _default_cache(), ssh_directory=self.context.args.get("ssh_directory")
                or None)

        link = RemoteLink(role, describe_remote(remote), connect, log=self.log.bind(side=role),
                          **hooks)
        self.links.append(link)
        return link

    async def _close_links(self) -> None:
        for link in self.links:
            await link.close()

    def _status(self) -> tuple[str, str]:
        """(status word, the connection error while a remote side is not up, else "")."""
        source, destination = self.source_link, self.destination_link
        status = session_status(source is not None, source is None or source.up,
                                destination is not None, destination is None or destination.up)
        for link in (source, destination):
            if link is not None and not link.up:
                return status, link.last_error or f"connecting to {link.description}"
        return status, ""

    async def handle(self, message):
        if isinstance(message, GetForwardingStatistics):
            s = self.relay.statistics
            status, connection_error = self._status()
            return ForwardingStatistics(
                self.relay.listener.describe(), s.open_connections, s.total_connections,
                s.outbound_bytes, s.inbound_bytes, s.errors, connection_error or s.last_error,
                status, self.source_link is None or self.source_link.up,
                self.destination_link is None or self.destination_link.up)
        raise NotHandled

    async def on_stop(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        await self._close_links()


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


def _default_cache() -> str:
    """The agent bundle cache: under the daemon's data directory (this process inherits its
    environment), else a per-user temporary directory."""
    try:
        from mutagen_actors.supervisor.datadir import resolve

        return os.path.join(resolve().root, "agent-bundles")
    except Exception:  # noqa: BLE001 - any trouble: a private temporary place
        return os.path.join(tempfile.gettempdir(), f"mutagen-actors-bundles-{os.getuid()}")
