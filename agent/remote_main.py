"""What runs on the remote: ``python3 <agent dir>/agent.py version|serve`` (the daemon starts it
as ``python3 -I -c <agent.install.BOOT> <identity> serve``, which finds ``<agent dir>`` under the
remote user's home without a shell).

``version`` prints the install identity. ``serve`` speaks the agent protocol on stdin/stdout:
the handshake (``wire.handshake``), then tunnel frames (``wire.tunnel``), answering requests
through ``AgentService`` until the daemon closes the stream or goes silent. The agent never
listens on a network port. Anything else written to stdout (a stray ``print`` in a library) is
sent to stderr instead: file descriptor 1 is re-pointed to 2 once the protocol stream has its
own duplicate. Logs go to stderr as JSON lines (level ``MUTAGEN_ACTORS_LOG_LEVEL``, default
warn), which the daemon keeps (the first 32 KiB) for error messages.

Exit status: 0 after an orderly end, 1 after a failed handshake or a broken tunnel, 2 for a
usage error.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys

HANDSHAKE_TIMEOUT = 10.0


def _identity() -> str:
    directory = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.basename(directory)


class AgentService:
    """Answers the agent-domain messages, and the endpoint ones through ``endpoints``."""

    def __init__(self, directory: str, endpoints=None):
        self.directory = directory
        self.endpoints = endpoints  # agent.serve_endpoint.EndpointService: the endpoint messages

    async def handle(self, message):
        from mutagen_actors.wire.handling import NotHandled
        from mutagen_actors.wire.messages import agent as m

        if isinstance(message, m.AgentEcho):
            return m.AgentEchoed(message.payload)
        if isinstance(message, m.AgentInfo):
            return m.AgentInfoReply(_identity(), platform.python_version(),
                                    f"{platform.system()}-{platform.machine()}", self.directory,
                                    os.getpid())
        if self.endpoints is not None:
            return await self.endpoints.handle(message)
        raise NotHandled


async def _stdio_streams(out_fd: int):
    from mutagen_actors.wire.tunnel import PipeReader, grow_pipe

    loop = asyncio.get_running_loop()
    # stdin: its pipe grown to 1 MiB, what the transport reads handed over without the copies
    # of a StreamReader (wire.tunnel.PipeReader).
    grow_pipe(sys.stdin.fileno())
    reader = PipeReader()
    await loop.connect_read_pipe(lambda: reader, sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


async def serve(out_fd: int) -> int:
    import structlog

    from mutagen_actors.wire import handshake, tunnel

    # Everything the served tunnel needs is imported before the handshake is answered: the
    # daemon's heartbeat clock starts with the handshake (3 silent seconds and the agent is
    # declared dead), and on a busy remote these imports alone can take that long.
    from mutagen_actors.agent import serve_forward
    from mutagen_actors.agent.serve_endpoint import EndpointService

    log = structlog.get_logger("agent.remote")
    reader, writer = await _stdio_streams(out_fd)
    offer = handshake.FEATURE_LZ4 if tunnel.lz4_available() else 0
    try:
        features = await handshake.exchange(reader, writer, offer, timeout=HANDSHAKE_TIMEOUT,
                                            peer="daemon")
    except handshake.HandshakeError as error:
        log.error("handshake failed", error=str(error))
        return 1
    service = AgentService(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    server = tunnel.RequestServer(service.handle, log=log)
    service.endpoints = EndpointService(server.send, log=log)
    forwarding = serve_forward.ForwardService(
        lambda payload: serve_forward.send_on(link, payload), log=log)
    link = tunnel.Tunnel(reader, writer, serve_forward.routed(server.on_data, forwarding),
                         compression=bool(features & handshake.FEATURE_LZ4), peer="daemon",
                         log=log)
    server.tunnel = link
    link.start()
    closed = await link.wait_closed()
    server.cancel()
    forwarding.close()
    await service.endpoints.close()  # stops the watcher, saves the digest cache
    orderly = "closed the tunnel" in str(closed) or "closed the stream" in str(closed)
    log.info("agent stopping", reason=str(closed))
    return 0 if orderly else 1


def main(argv: list[str]) -> int:
    command = argv[0].lstrip("-") if argv else ""
    if command == "version":
        print(_identity())
        return 0
    if command != "serve":
        sys.stderr.write("usage: agent.py version|serve\n")
        return 2
    out_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints go to stderr, never into the protocol stream
    sys.stdout = sys.stderr
    from mutagen_actors.actors.runtime import logs
    from mutagen_actors.agent.memory import limit_arenas

    limit_arenas()  # before any worker thread allocates: see agent.memory
    level = os.environ.get("MUTAGEN_ACTORS_LOG_LEVEL", "warn").lower()
    logs.configure("", level if level in logs.LEVELS else "warn", side="remote")
    try:
        return asyncio.run(serve(out_fd))
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
