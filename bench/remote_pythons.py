"""Check the agent against other Python versions on this machine (not a timed test: Python
versions other than the local one need ``pip download`` of their wheels from the package index).

For each interpreter given (paths, e.g. ``/root/.pyenv/versions/3.10.13/bin/python3``): install
the agent into a private HOME over the local transport, start it, ask ``AgentInfo``. A Python
older than 3.10 must fail with the clear "needs python3 >= 3.10" error.

Run: ``.venv/bin/python bench/remote_pythons.py PYTHON...``
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mutagen_actors.agent.install import AgentError  # noqa: E402
from mutagen_actors.agent.transports.local import LocalTransport  # noqa: E402
from mutagen_actors.wire.messages.agent import AgentInfo  # noqa: E402
from tests.remote.harness import AgentSession  # noqa: E402


async def check(python: str, cache: str) -> None:
    home = tempfile.mkdtemp(prefix="pyhome-", dir="/tmp")
    try:
        started = time.monotonic()
        async with AgentSession(LocalTransport(home, python=python), cache) as session:
            info = await session.client.request(AgentInfo(), timeout=10)
        print(f"{python}: ok in {time.monotonic() - started:.1f} s, agent python {info.python}")
    except AgentError as error:
        print(f"{python}: {error}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    cache = tempfile.mkdtemp(prefix="pycache-", dir="/tmp")
    try:
        for python in sys.argv[1:]:
            asyncio.run(check(python, cache))
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
