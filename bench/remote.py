"""Remote agent benchmark: connect times, tunnel round trip and throughput over SSH and docker exec.

Starts the same real servers as the remote tests (a private sshd on 127.0.0.1, a private
dockerd with a bare-python container; see ``tests/remote/infra.py``), then for each transport:

- first connect (probe, bundle, copy, install, start) and second connect (start only);
- round trip of a small request (``AgentInfo``) through DealerClient -> bridge -> tunnel ->
  agent, median and p99 of ``--requests``;
- echo of ``--megabytes`` MiB of source-like text (lz4 pays) and of random bytes (it does not),
  with the bytes that crossed the stream.

Run: ``.venv/bin/python bench/remote.py [--requests 500] [--megabytes 32]`` (as root).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mutagen_actors.agent.transports.docker import DockerTransport  # noqa: E402
from mutagen_actors.agent.transports.ssh import SshTransport  # noqa: E402
from mutagen_actors.supervisor.urls import Url  # noqa: E402
from mutagen_actors.wire.messages.agent import AgentEcho, AgentInfo  # noqa: E402
from tests.remote import infra  # noqa: E402
from tests.remote.harness import AgentSession, remove_agents  # noqa: E402


async def measure(name: str, transport, cache: str, requests: int, megabytes: int) -> None:
    async with AgentSession(transport, cache) as first:
        pass
    async with AgentSession(transport, cache) as session:
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            await session.client.request(AgentInfo(), timeout=10)
            times.append(time.perf_counter() - started)
        times.sort()
        text = (b"    def handle(self, message):  # dispatch on the message type\n" * (1 << 20))
        text = text[: megabytes << 20]
        noise = os.urandom(megabytes << 20)
        results = []
        for label, payload in (("text", text), ("random", noise)):
            tunnel = session.agent.tunnel
            sent, received = tunnel.bytes_sent, tunnel.bytes_received
            started = time.perf_counter()
            await session.client.request(AgentEcho(payload), timeout=120)
            elapsed = time.perf_counter() - started
            results.append((label, elapsed, tunnel.bytes_sent - sent, tunnel.bytes_received - received))
    print(f"{name}: first connect {first.connect_seconds:.2f} s, second connect "
          f"{session.connect_seconds * 1000:.0f} ms")
    print(f"{name}: AgentInfo round trip median {statistics.median(times) * 1e6:.0f} us, "
          f"p99 {times[int(len(times) * 0.99) - 1] * 1e6:.0f} us ({requests} requests)")
    for label, elapsed, sent, received in results:
        mib = megabytes
        print(f"{name}: echo {mib} MiB {label}: {elapsed:.2f} s, {2 * mib / elapsed:.0f} MiB/s "
              f"both ways; stream bytes sent {sent / (1 << 20):.1f} MiB, received "
              f"{received / (1 << 20):.1f} MiB")


async def main(args) -> None:
    cache = tempfile.mkdtemp(prefix="bench-cache-", dir="/tmp")
    sshd = infra.PrivateSshd(tempfile.mkdtemp(prefix="bench-sshd-", dir="/tmp")).start()
    dockerd = infra.PrivateDockerd(tempfile.mkdtemp(prefix="bench-dk-", dir="/tmp")).start()
    try:
        remove_agents(sshd.home)
        transport = await SshTransport.connect(Url("ssh", "", "testhost", 0, "x"),
                                               ssh_directory=sshd.client.directory)
        try:
            await measure("ssh", transport, cache, args.requests, args.megabytes)
        finally:
            await transport.close()
        container = dockerd.run_container(infra.bare_python_image(dockerd))
        docker = DockerTransport(Url("docker", "", container, 0, "/", dockerd.environment))
        await measure("docker", docker, cache, args.requests, args.megabytes)
    finally:
        dockerd.stop()
        sshd.stop()
        for path in (cache, sshd.root, dockerd.root):
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--megabytes", type=int, default=32)
    asyncio.run(main(parser.parse_args()))
