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
import time
from collections import deque

from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.sync import StagingProgress

from .job_actor import EndpointJobActor
from .plan import take_batch

BATCH_BYTES = 1024 * 1024
# Small files: at most this many per batch. A transfer's messages are decoded whole in three
# processes, and what a big decode leaves behind in the allocator stays resident for good.
BATCH_FILES = 1000
REQUEST_TIMEOUT = 60.0


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
        progress.total_expected_size = sum(max(0, s) for s in sizes.values())
        started = time.monotonic()
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
                    progress.received_files += ack.completed
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
                if chunks:
                    last = chunks[-1]
                    progress.path = last.path
                    progress.received_size = last.offset + len(last.data)
                    progress.expected_size = last.size
                    progress.total_received_size += sum(len(c.data) for c in chunks)
                    elapsed = time.monotonic() - started
                    if progress.total_received_size and elapsed > 0.5:
                        rate = progress.total_received_size / elapsed
                        remaining = progress.total_expected_size - progress.total_received_size
                        progress.seconds_remaining = max(0.0, remaining / rate)
                write = asyncio.ensure_future(receiver.request(m.StageChunks(chunks),
                                                               timeout=REQUEST_TIMEOUT))
        finally:
            if write is not None and not write.done():
                write.cancel()
        if problems:
            self.log.info("staging problems", count=len(problems), first=problems[0].error)
        return reply
