"""The forwarder actor in real processes under a real session supervisor (fork server, ZeroMQ
mailbox): statistics over the mailbox, kill -9 -> listening again within a second, dropping
only its own connections; bad arguments halt the session with the one-line reason."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import pytest
import zmq.asyncio

from mutagen_actors.supervisor import datadir
from mutagen_actors.supervisor.actor_process import fork_server_context, stop_fork_server
from mutagen_actors.supervisor.child_spec import ChildSpec
from mutagen_actors.supervisor.restart import RestartBudget
from mutagen_actors.supervisor.session_supervisor import Runtime, SessionSupervisor
from mutagen_actors.wire.messages.forward import ForwardingStatistics, GetForwardingStatistics

from .servers import EchoServer

FORWARDER = "mutagen_actors.actors.forward.actor:ForwarderActor"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _eventually(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


async def _open(endpoint: str):
    if endpoint.startswith("unix:"):
        return await asyncio.open_unix_connection(endpoint[5:])
    host, _, port = endpoint[len("tcp:"):].rpartition(":")
    return await asyncio.open_connection(host, int(port))


async def _echo_once(endpoint: str, payload: bytes) -> bool:
    """One connection through the forward: send, half-close, read the echo."""
    try:
        reader, writer = await _open(endpoint)
    except OSError:
        return False
    try:
        writer.write(payload)
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), 5) == payload
    except OSError:
        return False
    finally:
        writer.close()


async def _round_trip(reader, writer, payload: bytes) -> bytes:
    writer.write(payload)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(payload)), 5)


async def _dropped(reader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:
        return True


class Sessions:
    """Session supervisors of forwarder actors in this process, torn down in ``close``."""

    def __init__(self, root: str):
        self.paths = datadir.prepare(datadir.Paths(root))
        self.zmq = zmq.asyncio.Context()
        self.runtime = Runtime(fork_server_context(), self.zmq, self.paths)
        self.supervisors: list[SessionSupervisor] = []

    async def start(self, name: str, budget: RestartBudget | None = None,
                    **args) -> SessionSupervisor:
        # shutdown=1: a Stop reply can be lost (mailbox closes with linger 0), which costs the
        # whole shutdown timeout; see the report.
        spec = ChildSpec("forwarder", FORWARDER, args, shutdown=1.0, start_timeout=10.0)
        supervisor = SessionSupervisor(f"fwrd_{name}", name, "forward", [spec], self.runtime,
                                       budget=budget)
        self.supervisors.append(supervisor)
        supervisor.start()
        await asyncio.wait_for(supervisor.settled.wait(), 30)
        return supervisor

    async def close(self) -> None:
        await asyncio.gather(*(s.stop() for s in self.supervisors))
        self.zmq.term()


def _run(root: str, scenario):
    async def main():
        sessions = Sessions(root)
        try:
            await asyncio.wait_for(scenario(sessions), 120)
        finally:
            await sessions.close()

    try:
        asyncio.run(main())
    finally:
        stop_fork_server()


def _forwarder(supervisor: SessionSupervisor):
    return supervisor.children["forwarder"]


async def _statistics(supervisor: SessionSupervisor) -> ForwardingStatistics:
    client = _forwarder(supervisor).client
    return await client.request(GetForwardingStatistics(), timeout=5)


@pytest.mark.parametrize("source_kind", ["tcp", "unix"])
def test_kill_9_forwarder_listens_again_within_a_second_and_drops_only_its_connections(
        short_dir, source_kind):
    echo = EchoServer("tcp:127.0.0.1:0")
    if source_kind == "unix":
        source = f"unix:{os.path.join(short_dir, 'web.sock')}"
    else:
        source = f"tcp:127.0.0.1:{_free_port()}"
    other_source = f"tcp:127.0.0.1:{_free_port()}"

    async def scenario(sessions: Sessions):
        web = await sessions.start("web", source=source, destination=echo.endpoint)
        other = await sessions.start("other", source=other_source, destination=echo.endpoint)
        assert web.status == other.status == "running"

        reader, writer = await _open(source)
        other_reader, other_writer = await _open(other_source)
        assert await _round_trip(reader, writer, b"before") == b"before"
        assert await _round_trip(other_reader, other_writer, b"other") == b"other"
        stats = await _statistics(web)
        assert (stats.listening, stats.open_connections, stats.total_connections,
                stats.outbound_bytes, stats.inbound_bytes) == (source, 1, 1, 6, 6)

        victim = _forwarder(web).process.pid
        other_pid = _forwarder(other).process.pid
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)

        assert await _dropped(reader), "the killed forwarder's connection must be dropped"
        writer.close()

        async def forwarding_again():
            return await _echo_once(source, b"after")

        await _eventually(forwarding_again, 5, "the forward to work again")
        back_after = time.monotonic() - killed_at
        print(f"{source_kind} forward working again {back_after * 1000:.0f} ms after kill -9")
        assert back_after < 1.0, f"forwarding again only after {back_after:.2f} s"

        child = _forwarder(web)
        assert child.restarts == 1 and child.last_exit == "killed by SIGKILL"
        assert child.process.pid != victim
        # the other session never noticed
        assert _forwarder(other).process.pid == other_pid and _forwarder(other).restarts == 0
        assert await _round_trip(other_reader, other_writer, b"still here") == b"still here"
        other_writer.close()
        stats = await _statistics(web)  # a fresh incarnation counts from zero
        assert stats.total_connections >= 1 and stats.errors == 0

    try:
        _run(short_dir, scenario)
    finally:
        echo.close()
    if source_kind == "unix":
        assert not os.path.exists(source[5:]), "the socket file is removed on stop"


def test_statistics_count_refused_dials_over_the_mailbox(short_dir):
    source = f"tcp:127.0.0.1:{_free_port()}"
    nowhere = f"tcp:127.0.0.1:{_free_port()}"

    async def scenario(sessions: Sessions):
        web = await sessions.start("web", source=source, destination=nowhere)
        assert not await _echo_once(source, b"x")
        stats = await _eventually(lambda: _errors(web), 5, "the error to be counted")
        assert stats.errors == 1 and stats.open_connections == 0
        assert stats.last_error == f"cannot connect to {nowhere}: connection refused"
        assert web.status == "running" and _forwarder(web).restarts == 0

    async def _errors(web):
        stats = await _statistics(web)
        return stats if stats.errors else None

    _run(short_dir, scenario)


@pytest.mark.parametrize("args,reason", [
    ({"source": "tcp:127.0.0.1:70000", "destination": "tcp:127.0.0.1:80"},
     "port 70000 is out of range (0-65535)"),
    ({"source": "tcp:127.0.0.1:0", "destination": "tcp::80"}, "a destination needs a host"),
])
def test_bad_arguments_halt_the_session_with_the_reason(short_dir, args, reason):
    async def scenario(sessions: Sessions):
        web = await sessions.start("web", budget=RestartBudget(max_restarts=1, period=30),
                                   **args)
        await _eventually(_async(lambda: web.status == "halted"), 10, "the session to halt")
        assert reason in web.halt_reason

    _run(short_dir, scenario)


def test_address_in_use_halts_the_session_and_leaves_the_other_listener_alone(short_dir):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]

    async def scenario(sessions: Sessions):
        web = await sessions.start("web", budget=RestartBudget(max_restarts=1, period=30),
                                   source=f"tcp:127.0.0.1:{port}",
                                   destination="tcp:127.0.0.1:80")
        await _eventually(_async(lambda: web.status == "halted"), 10, "the session to halt")
        assert f"cannot listen on tcp:127.0.0.1:{port}: address already in use" in web.halt_reason

    try:
        _run(short_dir, scenario)
        holder.settimeout(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the original listener still accepts
    finally:
        holder.close()


def _async(predicate):
    async def check():
        return predicate()

    return check
