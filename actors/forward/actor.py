"""The forwarder actor: one forwarding session's source listener and relay, in its own process.

Launch arguments (``ActorLaunch.args`` / ``ChildSpec.args``):

- ``source``: local endpoint text to listen on (``tcp:127.0.0.1:8080``, ``unix:/path``);
- ``destination``: local endpoint text to dial for each accepted connection;
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

import resource

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages.forward import ForwardingStatistics, GetForwardingStatistics

from .dialers import DEFAULT_DIAL_TIMEOUT, make_dialer
from .endpoints import DEFAULT_SOCKET_PERMISSION_MODE, parse_endpoint, socket_options
from .listeners import open_listener
from .relay import Relay


class ForwarderActor(Actor):
    relay: Relay | None = None

    async def on_start(self) -> None:
        _raise_file_limit()
        args = self.context.args
        source = parse_endpoint(args["source"], listening=True)
        destination = parse_endpoint(args["destination"], listening=False)
        options = socket_options(
            args.get("socket_overwrite_mode", "leave"), args.get("socket_owner", ""),
            args.get("socket_group", ""),
            args.get("socket_permission_mode", DEFAULT_SOCKET_PERMISSION_MODE))
        listener = await open_listener(source, options,
                                       reclaim_stale=self.context.launch.restarts > 0)
        log = self.log.bind(side="source")
        self.relay = Relay(listener, make_dialer(destination,
                                                 float(args.get("dial_timeout",
                                                                DEFAULT_DIAL_TIMEOUT))),
                           log=log)
        self.relay.start()
        self.log.info("forwarding", listening=listener.describe(), destination=str(destination))

    async def handle(self, message):
        if isinstance(message, GetForwardingStatistics):
            s = self.relay.statistics
            return ForwardingStatistics(self.relay.listener.describe(), s.open_connections,
                                        s.total_connections, s.outbound_bytes, s.inbound_bytes,
                                        s.errors, s.last_error)
        raise NotHandled

    async def on_stop(self) -> None:
        if self.relay is not None:
            await self.relay.close()


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
