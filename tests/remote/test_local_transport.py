"""The install and tunnel path over the local transport (no SSH, no Docker): the agent runs in
a child process with a private HOME, the interpreter of this machine without our venv."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from mutagen_actors.agent.install import AgentError, agent_identity, connect_agent
from mutagen_actors.agent.transports.local import LocalTransport
from mutagen_actors.wire.messages.agent import AgentEcho, AgentEchoed, AgentInfo

from .harness import AgentSession

SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def test_install_then_reuse_over_the_local_transport(tmp_path, cache_directory):
    transport = LocalTransport(str(tmp_path), python=SYSTEM_PYTHON)

    async def main():
        async with AgentSession(transport, cache_directory) as first:
            info = await first.client.request(AgentInfo(), timeout=10)
        async with AgentSession(transport, cache_directory) as second:
            echoed = await second.client.request(AgentEcho(b"a" * 100_000), timeout=10)
        return first, info, second, echoed

    first, info, second, echoed = asyncio.run(main())
    assert "Copying agent..." in first.progress and second.progress == []
    assert info.directory == f"{tmp_path}/.mutagen-actors/agents/{agent_identity()}"
    assert echoed == AgentEchoed(b"a" * 100_000)
    assert second.connect_seconds < 2.0


def test_a_missing_interpreter_is_reported(tmp_path, cache_directory):
    transport = LocalTransport(str(tmp_path), python="/nonexistent/python3")

    async def main():
        await connect_agent(transport, lambda r, p: None, cache_directory=cache_directory)

    with pytest.raises(Exception) as caught:
        asyncio.run(main())
    assert "/nonexistent/python3" in str(caught.value)
    assert isinstance(caught.value, (AgentError, ConnectionError))
