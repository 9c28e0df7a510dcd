"""The Docker transport and the agent against a real private dockerd and a container of the
bare-python image (see ``infra``)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from mutagen_actors.agent.install import AgentError, agent_identity, connect_agent, start_agent
from mutagen_actors.agent.transports import run_collect
from mutagen_actors.agent.transports.docker import DockerTransport
from mutagen_actors.supervisor.urls import parse_url
from mutagen_actors.wire.messages.agent import AgentEcho, AgentEchoed, AgentInfo

from .harness import AgentSession


def test_first_connect_installs_and_the_second_reuses_it(python_container, docker_url, cache_directory):
    transport = DockerTransport(docker_url(python_container))

    async def main():
        async with AgentSession(transport, cache_directory) as first:
            info = await first.client.request(AgentInfo(), timeout=10)
        async with AgentSession(transport, cache_directory) as second:
            again = await second.client.request(AgentInfo(), timeout=10)
            payload = os.urandom(1 << 20) + b"x = compute(y)\n" * 300_000
            echoed = await second.client.request(AgentEcho(payload), timeout=30)
            compressed = second.agent.tunnel.bytes_sent < second.agent.tunnel.payload_bytes_sent
            sockets = await run_collect(transport, ["cat", "/proc/net/tcp", "/proc/net/tcp6"])
        return first, info, second, again, echoed, payload, compressed, sockets

    first, info, second, again, echoed, payload, compressed, sockets = asyncio.run(main())
    listening = [line for line in sockets.stdout.decode().splitlines()[1:] if line.split()[3:4] == ["0A"]]
    assert listening == []  # the running agent listens on no TCP port
    assert "Copying agent..." in first.progress and "Installing agent..." in first.progress
    assert info.version == agent_identity()
    assert info.directory == f"/root/.mutagen-actors/agents/{agent_identity()}"
    assert second.progress == [] and again.pid != info.pid
    print(f"\ndocker: first connect (install) {first.connect_seconds:.2f} s, "
          f"second connect {second.connect_seconds:.3f} s")
    assert second.connect_seconds < 2.0
    assert echoed == AgentEchoed(payload)
    assert compressed  # lz4 was agreed for a remote endpoint and paid off


def test_exec_user_and_home_directory(dockerd, python_container, docker_url):
    dockerd.docker("exec", python_container, "sh", "-c",
                   "id nobody2 >/dev/null 2>&1 || useradd -m -d /home/nobody2 nobody2")
    transport = DockerTransport(docker_url(python_container, user="nobody2"))

    async def main():
        home = await transport.home_directory()
        done = await run_collect(transport, ["id", "-un"], timeout=10)
        return home, done

    home, done = asyncio.run(main())
    assert home == "/home/nobody2"
    assert done.stdout.decode().strip() == "nobody2"


def test_copy_a_file_into_the_container(dockerd, python_container, docker_url, tmp_path):
    source = tmp_path / "notes.txt"
    source.write_bytes(b"hello container\n")
    transport = DockerTransport(docker_url(python_container))
    asyncio.run(transport.copy(str(source), "/tmp/notes.txt"))
    assert dockerd.docker("exec", python_container, "cat", "/tmp/notes.txt").stdout == b"hello container\n"


def test_the_captured_environment_selects_the_engine(python_container, docker_url):
    """Without the captured DOCKER_HOST the CLI would talk to another engine (or none)."""
    url = docker_url(python_container)
    lost = parse_url(f"docker://{python_container}/root", environment={
        "DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert lost.environment == {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}

    async def main():
        ok = await run_collect(DockerTransport(url), ["true"], timeout=10)
        bad = await run_collect(DockerTransport(lost), ["true"], timeout=10)
        return ok, bad

    ok, bad = asyncio.run(main())
    assert ok.status == 0
    assert bad.status != 0 and b"/nonexistent/docker.sock" in bad.stderr


def test_a_container_without_python3_gets_a_clear_error(no_python_container, docker_url, cache_directory):
    transport = DockerTransport(docker_url(no_python_container))

    async def main():
        await connect_agent(transport, lambda r, p: None, cache_directory=cache_directory)

    started = time.monotonic()
    with pytest.raises(AgentError) as caught:
        asyncio.run(main())
    assert str(caught.value).startswith(f"docker://{no_python_container} has no python3: the agent "
                                        "needs python3 >= 3.10 on the PATH there")
    assert time.monotonic() - started < 10


def test_a_missing_container_is_named(dockerd, docker_url, cache_directory):
    transport = DockerTransport(docker_url("no-such-container"))

    async def main():
        await connect_agent(transport, lambda r, p: None, cache_directory=cache_directory)

    with pytest.raises(AgentError, match="No such container: no-such-container"):
        asyncio.run(main())


def test_garbage_before_the_handshake_is_quoted(python_container, docker_url):
    transport = DockerTransport(docker_url(python_container))

    async def main():
        await start_agent(transport, lambda r, p: None, handshake_timeout=5, argv=[
            "python3", "-c", "import sys; sys.stdout.write('Traceback: agent exploded\\n')"])

    with pytest.raises(AgentError) as caught:
        asyncio.run(main())
    assert "did not answer the handshake; it printed: 'Traceback: agent exploded\\n'" in str(caught.value)


def test_killing_the_agent_is_noticed(dockerd, python_container, docker_url, cache_directory):
    transport = DockerTransport(docker_url(python_container))

    async def main():
        async with AgentSession(transport, cache_directory, heartbeat_interval=0.75) as session:
            info = await session.client.request(AgentInfo(), timeout=10)
            started = time.monotonic()
            dockerd.docker("exec", python_container, "kill", "-STOP", str(info.pid))
            try:
                closed = await asyncio.wait_for(session.agent.tunnel.wait_closed(), 10)
            finally:
                dockerd.docker("exec", python_container, "kill", "-KILL", str(info.pid))
            return closed, time.monotonic() - started

    closed, noticed = asyncio.run(main())
    print(f"\ndocker freeze: tunnel closed after {noticed:.2f} s: {closed}")
    assert "no sign of life" in str(closed) and noticed < 4.0


def test_two_concurrent_first_connects_both_get_a_working_agent(dockerd, python_container, docker_url, cache_directory):
    """alpha and beta on the same fresh remote install at the same time."""
    dockerd.docker("exec", python_container, "rm", "-rf", "/root/.mutagen-actors")
    transport = DockerTransport(docker_url(python_container))

    async def one():
        async with AgentSession(transport, cache_directory) as session:
            first = await session.client.request(AgentInfo(), timeout=10)
            await asyncio.sleep(0.5)  # the other install finishes meanwhile
            again = await session.client.request(AgentEcho(b"still here"), timeout=10)
            return session.progress, first, again

    async def main():
        return await asyncio.gather(one(), one())

    results = asyncio.run(main())
    for progress, first, again in results:
        assert "Copying agent..." in progress
        assert first.version == agent_identity() and again == AgentEchoed(b"still here")
    listing = dockerd.docker("exec", python_container, "ls", "-A", "/root/.mutagen-actors/agents").stdout
    assert listing.decode().split() == [agent_identity()]
