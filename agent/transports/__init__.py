"""Transports: how the daemon runs a command on a remote and talks to it.

A transport (``Transport``) runs a command with its stdin, stdout and stderr as byte streams
(``RemoteProcess``), copies a file, and closes. ``ssh.SshTransport`` does it over one asyncssh
connection; ``docker.DockerTransport`` over ``docker exec -i`` with the docker CLI;
``local.LocalTransport`` runs the commands here (tests without SSH or Docker). Everything
above (agent probe, install, the tunnel) uses only this protocol, so it never branches on the
kind of remote. ``for_url`` picks the transport for a parsed URL (``supervisor.urls.Url``).

Failure rules: connecting raises ``TransportError`` with a one-line message that names the
remote and the reason (unknown or changed host key, refused, timed out, no such container...).
``run`` raises ``TransportError`` when the command cannot be started at all; once started, a
failure is the command's exit status and its stderr.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional, Protocol, Sequence


class TransportError(ConnectionError):
    """The remote cannot be reached or the command cannot be started; the text says why."""


# A prompter relays a question to a waiting user (the terminal of ``create``/``resume``):
# ``await prompter(kind, message, echo)`` -> the answer, or None when nobody can answer.
# kinds: "host-key" (answer "yes" to trust an unknown key), "password", "kbdint".
Prompter = Callable[[str, str, bool], Awaitable[Optional[str]]]


class RemoteProcess(Protocol):
    """A running remote command. ``stdin`` has ``write``/``drain``/``write_eof``/``close``;
    ``stdout``/``stderr`` have ``read(n)`` (``b""`` at end of stream)."""

    stdin: object
    stdout: object
    stderr: object

    async def wait(self) -> int:
        """The exit status (negative: killed by that signal; 255: the connection broke)."""

    def terminate(self) -> None:
        """Stop the command (closing its streams); no-op when it has ended."""


class Transport(Protocol):
    description: str  # how the remote is named in messages: "user@host:port", "docker://c"

    async def run(self, argv: Sequence[str]) -> RemoteProcess: ...

    async def copy(self, local_path: str, remote_path: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Completed:
    status: int
    stdout: bytes
    stderr: bytes


async def run_collect(transport: Transport, argv: Sequence[str], *, input: bytes = b"",
                      timeout: float = 30.0, written: Callable[[], None] | None = None) -> Completed:
    """Run ``argv`` to completion, feeding ``input`` (then ``written()`` is called); raises
    ``TransportError`` past ``timeout`` (starting the command included)."""
    try:
        process = await asyncio.wait_for(transport.run(argv), timeout)
    except asyncio.TimeoutError:
        raise TransportError(f"{' '.join(argv[:2])} on {transport.description} did not start "
                             f"within {timeout:g} s") from None

    async def feed():
        try:
            if input:
                process.stdin.write(input)
                await process.stdin.drain()
            process.stdin.write_eof()
            if written is not None:
                written()
        except (ConnectionError, BrokenPipeError, OSError):
            pass  # the command ended without reading: its status says why

    async def drain(stream) -> bytes:
        chunks = []
        while True:
            chunk = await stream.read(1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    async def all_of():
        _, out, err = await asyncio.gather(feed(), drain(process.stdout), drain(process.stderr))
        return Completed(await process.wait(), out, err)

    try:
        return await asyncio.wait_for(all_of(), timeout)
    except asyncio.TimeoutError:
        process.terminate()
        raise TransportError(f"{' '.join(argv[:2])} on {transport.description} did not finish "
                             f"within {timeout:g} s") from None


async def for_url(url, **options) -> Transport:
    """Connect the transport for ``url`` (an SSH or Docker ``supervisor.urls.Url``)."""
    if url.protocol == "ssh":
        from .ssh import SshTransport

        return await SshTransport.connect(url, **options)
    if url.protocol == "docker":
        from .docker import DockerTransport

        return DockerTransport(url, **options)
    raise TransportError(f"no transport for a {url.protocol} URL")
