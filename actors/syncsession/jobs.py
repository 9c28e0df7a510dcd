"""Long operations of an actor as jobs: started by one request, polled by others.

An actor handles one request at a time; a transfer or a transition can take minutes. So the
request that starts one (``StageStart``, ``TransitionStart``) returns a job number at once and the
work runs in a task; ``JobStatus`` answers with progress, then the result. Starting a job cancels
the previous one (one cycle at a time per session). A restarted actor knows no jobs: polling an
unknown job is refused (``not-found``), which fails the cycle, as it should.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Awaitable, Callable

from mutagen_actors.agent.memory import trim
from mutagen_actors.wire.errors import RemoteError, RequestTimeout
from mutagen_actors.wire.handling import Refused
from mutagen_actors.wire.messages.endpoint import JobReply, JobStarted

EXPECTED_FAILURES = (RequestTimeout, RemoteError, ConnectionError, OSError, ValueError)


class Jobs:
    def __init__(self, log):
        self.log = log
        self._numbers = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._reply: JobReply | None = None

    def start(self, work: Callable[[JobReply], Awaitable[JobReply]]) -> JobStarted:
        """Run ``work(reply)``; it may update ``reply.progress`` as it goes and returns the final
        reply (``done`` is set here)."""
        if self._task is not None:
            self._task.cancel()
        number = next(self._numbers)
        reply = self._reply = JobReply(number, False)

        async def run():
            try:
                final = await work(reply)
                final.done = True
            except asyncio.CancelledError:
                raise
            except EXPECTED_FAILURES as error:
                self.log.warning("job failed", job=number, error=str(error))
                reply.error = str(error) or type(error).__name__
                reply.done = True
                return
            except Exception as error:  # noqa: BLE001 - reported to the requester
                self.log.exception("job failed", job=number)
                reply.error = f"{type(error).__name__}: {error}"
                reply.done = True
                return
            if final is not reply:
                final.job = number
                self._reply = final

        self._task = asyncio.get_running_loop().create_task(run())
        return JobStarted(number)

    @property
    def running(self) -> bool:
        """A job's work is still in progress (its reply may be collected later or never)."""
        return self._task is not None and not self._task.done()

    async def status(self, number: int, wait: float) -> JobReply:
        """The job's reply once done, or its progress after ``wait`` seconds."""
        if self._reply is None or self._reply.job != number:
            raise Refused("not-found", f"unknown job {number} (the actor restarted?)")
        if not self._reply.done and self._task is not None and wait > 0:
            await asyncio.wait({self._task}, timeout=min(wait, 1.0))
        reply = self._reply
        if reply.done:
            # Delivered: drop it (a transition's results can be large). Asking again gets
            # "unknown job", which fails that cycle: the safe answer to a lost reply.
            self._reply = None
            self._task = None
            trim()
        return reply

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
