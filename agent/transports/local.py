"""Local transport: the "remote" commands run here, as child processes.

For tests and benchmarks of everything above the transport (probe, install, handshake, tunnel,
and later remote endpoints) without SSH or Docker. ``home`` replaces ``HOME`` (so the agent is
installed under a private directory) and ``python`` replaces ``python3`` at the start of a
command (to try other interpreters). The environment is otherwise minimal: ``PATH`` only, like
a fresh login.
"""

from __future__ import annotations

import asyncio
import os
from typing import Sequence

from . import TransportError
from .docker import _Process


class LocalTransport:
    def __init__(self, home: str, *, python: str = "python3", path: str = "/usr/local/bin:/usr/bin:/bin"):
        self.home = home
        self.python = python
        self.environment = {"HOME": home, "PATH": path}
        self.description = f"local ({os.path.basename(python)}, HOME={home})"

    async def run(self, argv: Sequence[str]) -> _Process:
        argv = [self.python if argv[0] == "python3" else argv[0], *argv[1:]]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.environment, cwd=self.home,
                limit=1 << 20)
        except OSError as error:
            raise TransportError(f"unable to run {argv[0]}: {error}") from None
        return _Process(process)

    async def copy(self, local_path: str, remote_path: str) -> None:
        import shutil

        shutil.copyfile(local_path, os.path.join(self.home, os.path.expanduser(remote_path)))

    async def close(self) -> None:
        pass
