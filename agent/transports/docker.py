"""Docker transport: ``docker exec -i [--user u] <container> ...`` with the docker CLI.

Why the CLI and not the SDK: the CLI honours contexts (``DOCKER_CONTEXT``, ``docker context
use``), ``DOCKER_CONFIG`` and the TLS variables exactly as the user's own ``docker`` commands do;
the SDK does not read contexts. The Docker variables captured into the URL at create time
(``Url.environment``) replace the daemon's own ``DOCKER_*`` variables, so a session keeps
talking to the engine it was created against. The binary is ``$MUTAGEN_ACTORS_DOCKER_PATH`` or
``docker`` on the PATH.

Failures: ``run`` raises ``TransportError`` when the docker CLI cannot be started; a container
that does not exist or is not running shows as the command's exit status (125-127 from
``docker exec``) with docker's message on stderr, which ``explain_exec_failure`` turns into one
line. ``home_directory`` asks the container for ``$HOME`` of the exec user (``docker exec
env``), as Mutagen does. ``copy`` is ``docker cp`` (the file belongs to the container's
root user; the agent installer does not use it, it streams the bundle into ``python3``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Sequence

from . import Completed, TransportError, run_collect

DOCKER_PATH_VARIABLE = "MUTAGEN_ACTORS_DOCKER_PATH"


def docker_environment(captured, base=None) -> dict[str, str]:
    """The environment for the docker CLI: ``base`` without its ``DOCKER_*`` variables, plus the
    ``captured`` ones (pure)."""
    base = os.environ if base is None else base
    environment = {k: v for k, v in base.items() if not k.startswith("DOCKER_")}
    environment.update(captured)
    return environment


def exec_arguments(container: str, user: str, argv: Sequence[str]) -> list[str]:
    """``docker exec`` arguments for ``argv`` (pure)."""
    user_part = ["--user", user] if user else []
    return ["exec", "-i", *user_part, container, *argv]


def explain_exec_failure(description: str, completed: Completed) -> str | None:
    """One line for a ``docker exec`` that failed before the command ran, else None (pure)."""
    if completed.status not in (1, 125, 126, 127):
        return None
    text = completed.stderr.decode(errors="replace").strip()
    for marker in ("No such container", "is not running", "Cannot connect to the Docker daemon",
                   "is paused", "error during connect"):
        if marker in text:
            return f"unable to run a command in {description}: {text.splitlines()[-1]}"
    return None


class _Process:
    def __init__(self, process: asyncio.subprocess.Process):
        self._process = process
        self.stdin = _Writer(process.stdin)
        self.stdout = process.stdout
        self.stderr = process.stderr

    async def wait(self) -> int:
        return await self._process.wait()

    def terminate(self) -> None:
        if self._process.returncode is None:
            try:
                self._process.kill()
            except ProcessLookupError:
                pass


class _Writer:
    """asyncio's StreamWriter with ``write_eof`` that closes the pipe (a pipe has no half-close)."""

    def __init__(self, writer: asyncio.StreamWriter):
        self._writer = writer

    def write(self, data: bytes) -> None:
        self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def write_eof(self) -> None:
        self._writer.close()

    def close(self) -> None:
        self._writer.close()


class DockerTransport:
    def __init__(self, url, *, docker: str | None = None, **_ignored):
        self.container = url.host
        self.user = url.user
        self.environment = docker_environment(dict(url.environment))
        self.docker = docker or os.environ.get(DOCKER_PATH_VARIABLE) or shutil.which("docker") or "docker"
        user = f"{url.user}@" if url.user else ""
        self.description = f"docker://{user}{url.host}"

    async def run(self, argv: Sequence[str]) -> _Process:
        try:
            process = await asyncio.create_subprocess_exec(
                self.docker, *exec_arguments(self.container, self.user, argv),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=self.environment, limit=1 << 20)
        except OSError as error:
            raise TransportError(f"unable to run the docker CLI ({self.docker}): {error}") from None
        return _Process(process)

    async def home_directory(self, timeout: float = 10.0) -> str:
        completed = await run_collect(self, ["env"], timeout=timeout)
        if completed.status != 0:
            raise TransportError(explain_exec_failure(self.description, completed)
                                 or f"env failed in {self.description}: "
                                    f"{completed.stderr.decode(errors='replace').strip()}")
        for line in completed.stdout.decode(errors="replace").splitlines():
            if line.startswith("HOME="):
                return line[5:]
        raise TransportError(f"no HOME in the environment of {self.description}")

    async def copy(self, local_path: str, remote_path: str) -> None:
        process = await asyncio.create_subprocess_exec(
            self.docker, "cp", local_path, f"{self.container}:{remote_path}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=self.environment)
        _, err = await process.communicate()
        if process.returncode != 0:
            raise TransportError(f"unable to copy {local_path} to {self.description}:{remote_path}: "
                                 f"{err.decode(errors='replace').strip()}")

    async def close(self) -> None:
        pass
