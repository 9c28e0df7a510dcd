"""The SSH transport and the agent against a real private sshd (see ``infra``)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import pytest

from mutagen_actors.agent.install import AgentError, agent_identity, start_agent
from mutagen_actors.agent.transports import TransportError, run_collect
from mutagen_actors.agent.transports.ssh import SshTransport
from mutagen_actors.supervisor.urls import parse_url
from mutagen_actors.wire.messages.agent import AgentEcho, AgentEchoed, AgentInfo, AgentInfoReply

from . import infra
from .harness import AgentSession, remove_agents


def test_first_connect_installs_and_the_second_reuses_it(sshd, ssh_url, cache_directory):
    remove_agents(sshd.home)  # whatever ran before on this sshd: the first connect installs

    async def main():
        transport = await SshTransport.connect(ssh_url, ssh_directory=sshd.client.directory)
        try:
            async with AgentSession(transport, cache_directory) as first:
                info = await first.client.request(AgentInfo(), timeout=10)
            async with AgentSession(transport, cache_directory) as second:
                again = await second.client.request(AgentInfo(), timeout=10)
                payload = os.urandom(3 << 20) + b"source text " * 100_000
                echoed = await second.client.request(AgentEcho(payload), timeout=30)
        finally:
            await transport.close()
        return first, info, second, again, echoed, payload

    first, info, second, again, echoed, payload = asyncio.run(main())
    assert first.progress == ["Probing remote...", "Preparing agent bundle...", "Copying agent...",
                              "Installing agent...", "Starting agent..."] or \
        first.progress == ["Probing remote...", "Copying agent...", "Installing agent...",
                           "Starting agent..."]  # the bundle may be cached from an earlier test
    assert isinstance(info, AgentInfoReply) and info.version == agent_identity()
    assert info.directory == f"{sshd.home}/.mutagen-actors/agents/{agent_identity()}"
    assert second.progress == []  # nothing installed the second time
    assert again.version == info.version and again.pid != info.pid
    print(f"\nssh: first connect (install) {first.connect_seconds:.2f} s, "
          f"second connect {second.connect_seconds:.3f} s")
    assert second.connect_seconds < 2.0
    assert echoed == AgentEchoed(payload)


def test_a_different_version_is_replaced_and_old_versions_deleted(sshd, ssh_url, cache_directory):
    agents = os.path.join(sshd.home, ".mutagen-actors", "agents")
    os.makedirs(os.path.join(agents, "0.0.9-000000000000"), exist_ok=True)
    current = os.path.join(agents, agent_identity())
    if os.path.isdir(current):
        with open(os.path.join(current, ".installed"), "w") as handle:
            handle.write("cpython-39")  # made for another Python: must be replaced

    async def main():
        transport = await SshTransport.connect(ssh_url, ssh_directory=sshd.client.directory)
        try:
            async with AgentSession(transport, cache_directory) as session:
                return session.progress, await session.client.request(AgentInfo(), timeout=10)
        finally:
            await transport.close()

    progress, info = asyncio.run(main())
    assert "Copying agent..." in progress and info.version == agent_identity()
    assert sorted(os.listdir(agents)) == [agent_identity()]


def test_ssh_config_alias_and_aes_gcm(sshd, ssh_url):
    async def main():
        transport = await SshTransport.connect(ssh_url, ssh_directory=sshd.client.directory)
        try:
            done = await run_collect(transport, ["sh", "-c", "id -un; echo $HOME"], timeout=10)
            cipher = transport.connection.get_extra_info("send_cipher")
        finally:
            await transport.close()
        return done, cipher

    done, cipher = asyncio.run(main())
    assert done.status == 0
    assert done.stdout.decode().split() == [sshd.user, sshd.home]
    assert cipher == "aes128-gcm@openssh.com"


def _connect_error(url, ssh_directory, **options) -> tuple[str, float]:
    async def main():
        transport = await SshTransport.connect(url, ssh_directory=ssh_directory, **options)
        await transport.close()

    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        asyncio.run(main())
    return str(caught.value), time.monotonic() - started


def test_unknown_host_key_is_refused_with_a_clear_error(sshd, ssh_url):
    files = sshd.client_files("unknown", known_hosts="")
    message, _ = _connect_error(ssh_url, files.directory)
    assert f"host key for [127.0.0.1]:{sshd.port} is not known" in message
    assert "add it to known_hosts" in message


def test_unknown_host_key_accepted_through_the_prompter_is_recorded(sshd, ssh_url):
    files = sshd.client_files("prompted", known_hosts="")
    questions = []

    async def prompter(kind, message, echo):
        questions.append((kind, message))
        return "yes"

    async def main():
        transport = await SshTransport.connect(ssh_url, ssh_directory=files.directory,
                                               prompter=prompter)
        await transport.close()

    asyncio.run(main())
    assert [kind for kind, _ in questions] == ["host-key"]
    assert "can't be established" in questions[0][1] and "SHA256:" in questions[0][1]
    with open(files.known_hosts) as handle:
        assert handle.read().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")


def test_changed_host_key_is_refused_even_with_a_prompter(sshd, ssh_url, tmp_path):
    other = infra.generate_key(str(tmp_path / "other_host_key"), "other")
    files = sshd.client_files("changed", known_hosts=f"[127.0.0.1]:{sshd.port} "
                              f"{' '.join(other.split()[:2])}\n")

    async def prompter(kind, message, echo):
        return "yes"

    message, _ = _connect_error(ssh_url, files.directory, prompter=prompter)
    assert f"host key for [127.0.0.1]:{sshd.port} has changed" in message


def test_closed_port_fails_within_the_connect_timeout(sshd):
    port = infra.free_port()  # nothing listens there
    url = parse_url(f"{sshd.user}@127.0.0.1:{port}:project")
    message, elapsed = _connect_error(url, sshd.client.directory, connect_timeout=2.0)
    assert message.startswith(f"unable to connect to 127.0.0.1:{port}: ")
    assert elapsed < 3.5


def test_silent_server_fails_within_the_connect_timeout(sshd):
    """A port that accepts but never speaks SSH: the connect deadline applies."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        url = parse_url(f"{sshd.user}@127.0.0.1:{port}:project")
        message, elapsed = _connect_error(url, sshd.client.directory, connect_timeout=1.0)
    assert message.startswith(f"unable to connect to 127.0.0.1:{port}")
    assert elapsed < 2.5


def test_garbage_before_the_handshake_is_quoted(sshd, ssh_url):
    async def main():
        transport = await SshTransport.connect(ssh_url, ssh_directory=sshd.client.directory)
        try:
            await start_agent(transport, lambda r, p: None, handshake_timeout=5, argv=[
                "sh", "-c", "echo 'Welcome to the build box!'; echo 'motd: be nice' >&2; sleep 3"])
        finally:
            await transport.close()

    with pytest.raises(AgentError) as caught:
        asyncio.run(main())
    assert "remote agent did not answer the handshake; it printed: 'Welcome to the build box!\\n'" \
        in str(caught.value)


def _connection_processes(sshd, before: set[int]) -> list[int]:
    """The sshd processes of one new connection: the monitor and the child that holds the
    socket (privilege separation), not the commands they run."""
    found = []
    for monitor in sshd.session_processes():
        if monitor in before:
            continue
        found.append(monitor)
        found += [pid for pid in infra.children_of(monitor) if _comm(pid) == "sshd"]
    return found


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


@pytest.mark.parametrize("how", ["kill", "freeze"])
def test_losing_the_sshd_of_the_connection_is_noticed_by_the_heartbeat(sshd, ssh_url, cache_directory, how):
    """kill -9 (the stream ends) or SIGSTOP (the link goes silent) of the connection's sshd."""
    async def main():
        before = set(sshd.session_processes())
        transport = await SshTransport.connect(ssh_url, ssh_directory=sshd.client.directory,
                                               keepalive_interval=60)
        stopped = []
        try:
            async with AgentSession(transport, cache_directory, heartbeat_interval=0.75) as session:
                await session.client.request(AgentInfo(), timeout=10)
                processes = _connection_processes(sshd, before)
                assert len(processes) == 2, processes  # monitor + network child
                started = time.monotonic()
                for pid in processes:
                    if how == "kill":
                        os.kill(pid, signal.SIGKILL)
                    else:
                        stopped.append(pid)
                        os.kill(pid, signal.SIGSTOP)
                closed = await asyncio.wait_for(session.agent.tunnel.wait_closed(), 10)
                noticed = time.monotonic() - started
        finally:
            for pid in stopped:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            await transport.close()
        return closed, noticed

    closed, noticed = asyncio.run(main())
    print(f"\nssh {how}: tunnel closed after {noticed:.2f} s: {closed}")
    assert noticed < 4.0
    if how == "freeze":
        assert "no sign of life" in str(closed)


def test_a_container_with_its_own_sshd_gets_the_agent_once(container_sshd, cache_directory):
    """The most realistic SSH remote here: its own filesystem and a bare python3."""
    url = parse_url("containerhost:~/project")

    async def main():
        transport = await SshTransport.connect(url, ssh_directory=container_sshd.client.directory)
        try:
            async with AgentSession(transport, cache_directory) as first:
                info = await first.client.request(AgentInfo(), timeout=10)
            async with AgentSession(transport, cache_directory) as second:
                again = await second.client.request(AgentInfo(), timeout=10)
        finally:
            await transport.close()
        return first, info, second, again

    first, info, second, again = asyncio.run(main())
    assert "Copying agent..." in first.progress and second.progress == []
    assert info.directory == f"/root/.mutagen-actors/agents/{agent_identity()}"
    assert again.pid != info.pid
    print(f"\ncontainer sshd: first connect {first.connect_seconds:.2f} s, "
          f"second {second.connect_seconds:.3f} s")
    assert second.connect_seconds < 2.0


def test_proxy_jump_hops_are_checked_against_known_hosts_too(sshd):
    """ProxyJump through the same sshd; the hop uses this ssh directory's known_hosts."""
    files = sshd.client_files("jump")
    with open(files.config, "a") as handle:
        handle.write(f"Host viajump\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
                     f"  IdentityFile {files.identity}\n  ProxyJump testhost\n")

    async def main():
        transport = await SshTransport.connect(parse_url("viajump:x"), ssh_directory=files.directory)
        try:
            done = await run_collect(transport, ["sh", "-c", "echo $SSH_CLIENT"], timeout=10)
            hops = len(transport.hops)
        finally:
            await transport.close()
        return done, hops

    done, hops = asyncio.run(main())
    assert done.status == 0 and hops == 1
    assert done.stdout.split()[0] == b"127.0.0.1"


def test_an_alias_that_points_at_a_closed_port_is_named_by_its_real_address(sshd, tmp_path):
    port = infra.free_port()
    directory = tmp_path / "ssh"
    directory.mkdir()
    (directory / "config").write_text(f"Host deadhost\n  HostName 127.0.0.1\n  Port {port}\n")
    message, elapsed = _connect_error(parse_url("deadhost:x"), str(directory), connect_timeout=2.0)
    assert message.startswith(f"unable to connect to 127.0.0.1:{port}: ")
