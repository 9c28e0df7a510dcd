"""The stager actor: moves file content from the sending endpoint into the receiving endpoint's
staging store, as one streamed, pipelined flow per cycle.

``StageStart(receiver, items)`` starts a job (see ``jobs``):
1. ``StageBegin`` on the receiver: it reuses content it already has and says what it needs;
2. ``FileSizes`` on the sender (for progress and batching);
3. ``Supply`` requests of at most ``BATCH_BYTES`` (1 MiB; bigger files travel in pieces) are
   pipelined with ``StageChunks`` on the receiver: while batch *n* is written, batch *n+1* is
   read. Memory stays bounded by two batches; there is no round trip per file.
Per-file problems (a file that changed while it was read does not verify and is not staged) are
not job failures: the transition then reports the file missing and the cycle runs again.
A failed request (timeout, an endpoint went away) fails the job.
Arguments: ``alpha`` and ``beta``: the endpoints' mailbox addresses.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque

from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.sync import StagingProgress

from .job_actor import EndpointJobActor
from .plan import take_batch
from .staging_progress import StagingTracker

BATCH_BYTES = 1024 * 1024
# Small files: at most this many per batch. A transfer's messages are decoded whole in three
# processes, and what a big decode leaves behind in the allocator stays resident for good.
BATCH_FILES = 1000
REQUEST_TIMEOUT = 60.0
# Test-only: caps a transfer's rate (bytes per second) so tests can watch staging mid-flight
# without huge trees. Read from the daemon's environment (actors inherit it); unset in real use.
TEST_RATE_VARIABLE = "MUTAGEN_ACTORS_TEST_STAGING_RATE"


def _test_rate() -> float:
    try:
        return max(0.0, float(os.environ.get(TEST_RATE_VARIABLE, "0")))
    except ValueError:
        return 0.0


class StagerActor(EndpointJobActor):
    START = m.StageStart

    async def run_job(self, reply: m.JobReply, start: m.StageStart) -> m.JobReply:
        receiver = self.peers[start.receiver]
        sender = self.peers["beta" if start.receiver == "alpha" else "alpha"]
        welcome = await receiver.request(m.EndpointHello(), timeout=REQUEST_TIMEOUT)
        needs = (await receiver.request(m.StageBegin(welcome.epoch, start.items),
                                        timeout=REQUEST_TIMEOUT)).items
        progress = reply.progress = StagingProgress(expected_files=len(needs))
        if not needs:
            return reply
        sizes_reply = await sender.request(m.FileSizes([i.path for i in needs]),
                                           timeout=REQUEST_TIMEOUT)
        sizes = {item.path: size for item, size in zip(needs, sizes_reply.sizes)}
        tracker = StagingTracker(progress)  # progress accounting: see staging_progress
        tracker.expect(sizes)
        rate, sent, started = _test_rate(), 0, time.monotonic()
        written: list = []  # the chunks of the write in flight
        queue = deque((item, 0) for item in needs)
        write: asyncio.Future | None = None
        problems: list = []
        try:
            while True:
                batch = take_batch(queue, sizes, BATCH_BYTES, BATCH_FILES) if queue else []
                fetch = (asyncio.ensure_future(sender.request(m.Supply(batch, BATCH_BYTES),
                                                              timeout=REQUEST_TIMEOUT))
                         if batch else None)
                if write is not None:
                    ack = await write
                    write = None
                    tracker.acknowledged(written, (p.path for p in ack.problems))
                    problems.extend(ack.problems)
                if fetch is None:
                    break
                supplied = await fetch
                chunks = supplied.chunks
                served = {(c.path, c.offset) for c in chunks}
                unserved = [r for r in batch if (r.path, r.offset) not in served]
                for request in reversed(unserved):
                    queue.appendleft((m.StageItem(request.path, request.digest), request.offset))
                if chunks and not chunks[-1].eof:
                    last = chunks[-1]
                    queue.appendleft((m.StageItem(last.path, last.digest),
                                      last.offset + len(last.data)))
                written = chunks
                write = asyncio.ensure_future(receiver.request(m.StageChunks(chunks),
                                                               timeout=REQUEST_TIMEOUT))
                if rate:
                    sent += sum(len(c.data) for c in chunks)
                    await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
        finally:
            if write is not None and not write.done():
                write.cancel()
        tracker.finish()
        if problems:
            self.log.info("staging problems", count=len(problems), first=problems[0].error)
        return reply
