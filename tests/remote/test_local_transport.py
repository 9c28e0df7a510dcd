"""The install and tunnel path over the local transport (no SSH, no Docker): the agent runs in
a child process with a private HOME, the interpreter of this machine without our venv."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from mutagen_actors.agent.install import AgentError, agent_identity, connect_agent, install, probe
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


def test_install_leaves_byte_code_so_the_first_start_compiles_nothing(tmp_path, cache_directory):
    """The remote's python3 compiles the agent while installing (generous deadline), not at its
    first start (inside the handshake deadline; seconds on a busy remote)."""
    transport = LocalTransport(str(tmp_path), python=SYSTEM_PYTHON)

    async def main():
        platform = await probe(transport)
        return await install(transport, platform, cache_directory=cache_directory)

    directory = asyncio.run(main())
    sources = [os.path.join(d, name) for d, _, names in os.walk(directory) for name in names
               if name.endswith(".py")]
    assert len(sources) > 100, sources
    tag = subprocess.run([SYSTEM_PYTHON, "-I", "-c", "import sys;print(sys.implementation.cache_tag)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    uncompiled = [s for s in sources
                  if not os.path.exists(os.path.join(os.path.dirname(s), "__pycache__",
                                                     os.path.basename(s)[:-3] + f".{tag}.pyc"))]
    assert uncompiled == []
