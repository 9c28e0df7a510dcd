"""The shell around one actor incarnation: spawn through the fork server, wait for *ready*,
notice its death at once, stop it.

- ``start``: forks the actor (``actors.runtime.process.run``) from the preloading fork server and
  waits, with a deadline, for the ``("ready", pid)`` or ``("failed", reason)`` message on a pipe.
  Raises ``StartFailed(reason)`` if the actor reports failure, dies first or misses the deadline
  (it is killed then).
- ``exited``: a future resolved with an ``Exit`` as soon as the process ends: the fork server's
  status pipe (the process *sentinel*) is watched by the event loop, no polling.
- ``stop``: ``Stop`` through the mailbox, then SIGTERM after the shutdown timeout, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import signal
from dataclasses import dataclass

from mutagen_actors.actors.runtime.launch import ActorLaunch
from mutagen_actors.wire.messages.actor import Stop

from .waiting import done_within

PROCESS_MODULE = "mutagen_actors.actors.runtime.process"
# Modules the fork server imports before forking actors (shared copy-on-write by every actor).
# Session kinds append their actor modules at import time, before the daemon starts the server.
# without_openssl first: asyncio and secrets without loading OpenSSL (see that module).
PRELOAD_MODULES: list = ["mutagen_actors.actors.runtime.without_openssl", PROCESS_MODULE]
# Imported after every preload: freezes the preloaded heap for the GC and limits glibc's malloc
# arenas (see that module; measured effect in docs/architecture.md "Memory of many sessions").
SETUP_MODULE = "mutagen_actors.actors.runtime.forkserver_setup"


class StartFailed(Exception):
    pass


@dataclass(frozen=True)
class Exit:
    status: int  # exit code, or -signal number
    note: str = ""

    @property
    def normal(self) -> bool:
        return self.status == 0

    def describe(self) -> str:
        text = self._describe_status()
        return f"{text} ({self.note})" if self.note else text

    def _describe_status(self) -> str:
        if self.status == 0:
            return "exited normally"
        if self.status < 0:
            try:
                name = signal.Signals(-self.status).name
            except ValueError:
                name = f"signal {-self.status}"
            return f"killed by {name}"
        return f"exited with status {self.status}"


def fork_server_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context actors are started with (fork server preloading the actor
    runtime: see docs/architecture.md for the measured costs)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*PRELOAD_MODULES, SETUP_MODULE])
    return context


def fork_server_pid() -> int:
    from multiprocessing import forkserver

    return forkserver._forkserver._forkserver_pid or 0  # noqa: SLF001 - no public accessor


def stop_fork_server() -> None:
    """Close the fork server's 'alive' pipe and reap it (call after every actor is gone)."""
    from multiprocessing import forkserver

    if forkserver._forkserver._forkserver_pid:  # noqa: SLF001
        forkserver._forkserver._stop()  # noqa: SLF001


class ActorProcess:
    def __init__(self, context, launch: ActorLaunch):
        self.launch = launch
        self._context = context
        self._process = None
        self.pid = 0
        self._pidfd: int | None = None
        self.exited: asyncio.Future = asyncio.get_running_loop().create_future()

    async def start(self, timeout: float) -> int:
        loop = asyncio.get_running_loop()
        from mutagen_actors.actors.runtime import process as runtime

        reader, writer = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=runtime.run, args=(self.launch, writer),
            name=f"actor {self.launch.session}/{self.launch.actor_id}", daemon=False)
        try:
            self._process.start()
        except (OSError, EOFError) as error:  # the fork server is unreachable
            reader.close()
            raise StartFailed(f"could not fork an actor: {error}") from None
        finally:
            writer.close()
        self.pid = self._process.pid
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            self._pidfd = None  # already gone; the sentinel tells how
        loop.add_reader(self._process.sentinel, self._on_exit)
        answer: asyncio.Future = loop.create_future()

        def on_ready_pipe():
            loop.remove_reader(reader.fileno())
            try:
                message = reader.recv()
            except (EOFError, OSError):
                message = ("died", "")
            if not answer.done():
                answer.set_result(message)

        loop.add_reader(reader.fileno(), on_ready_pipe)
        try:
            ready = await done_within(answer, timeout)
        finally:
            if not answer.done():
                loop.remove_reader(reader.fileno())
            reader.close()
        if not ready:
            self.kill()
            raise StartFailed(f"not ready within {timeout:g} s")
        kind, detail = answer.result()
        if kind == "ready":
            return self.pid
        if kind == "failed":
            raise StartFailed(detail)
        exit_ = await self.exited
        raise StartFailed(f"{exit_.describe()} before it was ready")

    def _on_exit(self) -> None:
        """The sentinel is readable: the fork server reported the exit status, or the fork
        server itself died (status unknown, 255). In that case the actor may still run: kill it
        through its pidfd and report the exit once the pidfd says it is gone."""
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._process.sentinel)
        self._process.join(0)
        status = self._process.exitcode
        self._process.close()
        if status in (None, 255) and self._pidfd is not None and _running(self._pidfd):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            loop.add_reader(self._pidfd, self._finish,
                            Exit(-signal.SIGKILL, "killed by the supervisor: its fork server died"))
            return
        self._finish(Exit(255 if status is None else status))

    def _finish(self, exit_: Exit) -> None:
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if not self.exited.done():
            self.exited.set_result(exit_)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal this incarnation (through its pidfd: never a recycled pid)."""
        if self.exited.done() or self._pidfd is None:
            return
        try:
            signal.pidfd_send_signal(self._pidfd, sig)
        except ProcessLookupError:
            pass

    async def stop(self, client, shutdown: float) -> Exit:
        """Stop gracefully; escalate to SIGTERM after ``shutdown`` s and SIGKILL 1 s later."""
        if not self.pid:
            return Exit(0)
        if not self.exited.done():
            if client is None:
                self.kill(signal.SIGTERM)  # not ready yet: nobody to ask
            else:
                # Whichever comes first: the Ok, or the exit (the Ok may be lost when the actor
                # closes its mailbox right after sending it).
                request = asyncio.ensure_future(client.request(Stop(), timeout=shutdown))
                await asyncio.wait({request, self.exited}, timeout=shutdown,
                                   return_when=asyncio.FIRST_COMPLETED)
                request.cancel()
                await asyncio.gather(request, return_exceptions=True)
        for sig, grace in ((None, shutdown), (signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
            if sig is not None:
                self.kill(sig)
            if await done_within(self.exited, grace):
                return self.exited.result()
        return await self.exited


def _running(pidfd: int) -> bool:
    readable, _, _ = select.select([pidfd], [], [], 0)
    return not readable
