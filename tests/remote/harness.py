"""Daemon-side set-up for the remote tests: connect (installing if needed) an agent over a
transport, then a DealerClient that talks to it through a TunnelBridge."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import zmq
import zmq.asyncio

from mutagen_actors.agent.install import connect_agent
from mutagen_actors.wire.sockets import DealerClient
from mutagen_actors.wire.tunnel import TunnelBridge


class AgentSession:
    def __init__(self, transport, cache_directory: str, *, heartbeat_interval: float = 1.0):
        self.transport = transport
        self.cache_directory = cache_directory
        self.heartbeat_interval = heartbeat_interval
        self.progress: list[str] = []
        self.connect_seconds = 0.0

    async def __aenter__(self):
        self.directory = tempfile.mkdtemp(prefix="agt-", dir="/tmp")
        self.context = zmq.asyncio.Context()
        self.bridge = TunnelBridge(self.context, f"ipc://{self.directory}/agent.ipc")
        self.bridge.bind()
        started = time.monotonic()
        try:
            self.agent = await connect_agent(self.transport, self.bridge.deliver,
                                             cache_directory=self.cache_directory,
                                             progress=self.progress.append,
                                             heartbeat_interval=self.heartbeat_interval)
        except BaseException:
            self._cleanup()
            raise
        self.connect_seconds = time.monotonic() - started
        self.bridge.attach(self.agent.tunnel)
        self.client = DealerClient(self.context, self.bridge.endpoint)
        return self

    async def __aexit__(self, *exc):
        self.client.close()
        await self.agent.close()
        self._cleanup()

    def _cleanup(self):
        self.bridge.close()
        self.context.destroy(linger=0)
        shutil.rmtree(self.directory, ignore_errors=True)


def remove_agents(home: str) -> None:
    shutil.rmtree(os.path.join(home, ".mutagen-actors"), ignore_errors=True)
