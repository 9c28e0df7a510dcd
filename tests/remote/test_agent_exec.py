"""The SSH command that starts the agent replaces the login shell (``exec``): no ``sh`` stays
resident between sshd and the agent (issue 6, memory)."""

from __future__ import annotations

import asyncio

from mutagen_actors.agent.transports import run_collect
from mutagen_actors.agent.transports.ssh import SshTransport
from mutagen_actors.wire.messages.agent import AgentInfo

from .harness import AgentSession


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("PPid:"):
                return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def _command(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as comm:
        return comm.read().strip()


def test_the_agent_is_a_child_of_sshd_not_of_a_shell(sshd, ssh_url, cache_directory):
    async def main():
        transport = await SshTransport.connect(ssh_url, ssh_directory=sshd.client.directory)
        try:
            async with AgentSession(transport, cache_directory) as session:
                info = await session.client.request(AgentInfo(), timeout=10)
                parent = _parent(info.pid)  # the private sshd runs on this machine
                return info, parent, _command(parent)
        finally:
            await transport.close()

    info, parent, command = asyncio.run(main())
    assert command.startswith("sshd"), (info.pid, parent, command)


def test_a_missing_program_still_reads_as_not_found(sshd, ssh_url):
    async def main():
        transport = await SshTransport.connect(ssh_url, ssh_directory=sshd.client.directory)
        try:
            return await run_collect(transport, ["no-such-program-here", "-x"], timeout=10)
        finally:
            await transport.close()

    completed = asyncio.run(main())
    assert completed.status == 127
    assert "no-such-program-here" in completed.stderr.decode(errors="replace")
