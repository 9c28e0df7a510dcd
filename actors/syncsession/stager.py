"""The stager actor: moves file content from the sending endpoint into the receiving endpoint's
staging store, as one streamed, pipelined flow per cycle.

``StageStart(receiver, items)`` starts a job (see ``jobs``):
1. ``StageBegin`` on the receiver: it reuses content it already has and says what it needs;
2. ``EndpointHello`` and ``FileSizes`` on the sender (which path to take; progress and batching);
3. the content travels in batches of at most ``BATCH_BYTES`` (1 MiB; bigger files travel in
   pieces) and ``BATCH_FILES`` files, by one of two paths:

   *Straight* (the sender's welcome says ``supply_to``: a local endpoint actor; and no item is
   a delta): ``SupplyTo(batch, receiver's mailbox)`` on the sender, which reads the batch and
   sends it as ``StageChunks`` to the receiver itself (``agent.supply_to``), then answers with
   the chunks' metadata (``ChunkInfo``) and the receiver's ``StageAck``. The content never
   passes through the stager. ``WRITES_IN_FLIGHT`` (6) requests are in flight: while the
   receiver writes batch n, batches n+1... are read, sent and on their way (the sender's and
   a remote receiver's relay ``MAX_CONCURRENT`` match it, else they would cap it). The sender reads and sends them in
   arrival order, so the receiver gets the pieces of a file in order. To ask for batch n+1
   before n's reply, the stager needs where the sender cuts n (``plan.expected_cut``: known for
   raw reads of files whose size it knows); where it is not known, it waits for the reply. A
   file cut elsewhere than expected (it changed while read) whose next piece was asked for
   already is fetched again whole (void pieces ignored), once; a second time it is a problem.
   The receiver's refusal (``stale``, ``disconnected``, ...) is the ``SupplyTo``'s refusal and
   fails the job with the receiver's reason.

   *Through the stager* (a remote sender, or a delta): ``Supply`` requests pipelined with
   ``StageChunks`` on the receiver: ``WRITES_IN_FLIGHT`` writes may be in flight while the next
   batch is read, so while batch *n* is written, the next ones travel to the receiver and one
   more is read. The receiver handles writes in the order sent (an endpoint handles them one
   at a time, in arrival order). Memory stays bounded by ``WRITES_IN_FLIGHT`` + 1 batches (7 MiB
   of content, plus their encoded copies); there is no round trip per file.

   Either way, when an ack asks for a file again whole, pieces of it already sent in the other
   writes in flight are void: the receiver refuses them (they arrive after the discard) and
   their results are ignored. The accounting (served and unserved requests, the rest of a file
   read in part, content counts, refetches, ``StagingTracker`` progress) is the same on both.
Per-file problems (a file that changed while it was read does not verify and is not staged) are
not job failures: the transition then reports the file missing and the cycle runs again.
A failed request (timeout, an endpoint went away, a refusal) fails the job.
Arguments: ``alpha`` and ``beta``: the endpoints' mailbox addresses (the straight path gives the
receiver's to the sender).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Optional

from mutagen_actors.actors.sync.model import Problem
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.sync import StagingProgress

from .job_actor import EndpointJobActor, test_setting
from .plan import expected_cut, take_batch
from .staging_progress import StagingTracker

BATCH_BYTES = 1024 * 1024
# Small files: at most this many per batch. A transfer's messages are decoded whole in three
# processes, and what a big decode leaves behind in the allocator stays resident for good.
BATCH_FILES = 1000
REQUEST_TIMEOUT = 60.0
# StageChunks writes in flight: while the receiver writes batch n, the next ones are read, sent
# and relayed (a remote endpoint actor relays them meanwhile: ``Actor.CONCURRENT``). With two,
# the path alpha -> beta -> sshd -> agent and back had idle stages: the initial sync of 100k
# files to SSH ran at ~75 % of the 2 cores; six took it ~1 s shorter (bench/README.md), for
# ~24 MB more at the peak (the batches on their way, each held by a process or two).
WRITES_IN_FLIGHT = 6
SETTLE_ON_FAILURE = 10.0  # seconds a failed job waits for its writes in flight
# Test-only: caps a transfer's rate (bytes per second) so tests can watch staging mid-flight
# without huge trees. Read from the daemon's environment (actors inherit it); unset in real use.
# On the straight path it also sends one SupplyTo at a time, each paced before it goes: a whole
# window sent at once and then a long wait would leave nothing in flight most of the time.
TEST_RATE_VARIABLE = "MUTAGEN_ACTORS_TEST_STAGING_RATE"


@dataclass
class TransferCounts:
    """What one staging pass moved: ``content_bytes`` (raw bytes and delta literals that
    crossed), ``resumed_bytes`` (prefixes the receiver already held), the digests sent as deltas,
    and how many files were fetched again whole."""

    content_bytes: int = 0
    resumed_bytes: int = 0
    delta_files: set = field(default_factory=set)
    refetched: set = field(default_factory=set)  # digests

    def count(self, chunks) -> None:
        for chunk in chunks:
            self.content_bytes += chunk.payload
            if chunk.delta:
                self.delta_files.add(chunk.digest)


def refetch_whole(items, current: dict, counts: TransferCounts, queue: deque) -> set:
    """Queue ``items`` (an ack's ``refetch``) again, raw and from offset 0, at the front of
    ``queue`` (pairs of item and offset), dropping their other entries; ``current`` (digest ->
    item to ask for) then holds the raw item. Each digest at most once per pass (a second
    failure stays a problem: the cycle runs again). Returns the digests queued again."""
    again = {}
    for item in items:
        if item.digest in current and item.digest not in counts.refetched:
            again[item.digest] = item
    if not again:
        return set()
    kept = [entry for entry in queue if entry[0].digest not in again]
    queue.clear()
    for digest, item in again.items():
        current[digest] = m.StageItem(item.path, digest)
        queue.append((current[digest], 0))
    queue.extend(kept)
    counts.refetched.update(again)
    return set(again)


async def let_finish(futures) -> None:
    """A failing job lets its requests in flight finish (bounded: ``SETTLE_ON_FAILURE``), so
    that what the receiver holds when the failure is reported is what the next attempt resumes
    from."""
    pending = [future for future in futures if not future.done()]
    if pending:
        await asyncio.wait(pending, timeout=SETTLE_ON_FAILURE)


def release(futures) -> None:
    """Cancel the requests still in flight; a failed one's exception is retrieved (so it is not
    logged a second time)."""
    for future in futures:
        if not future.done():
            future.cancel()
        elif not future.cancelled():
            future.exception()


@dataclass
class InFlight:
    """One ``StageChunks`` write sent: its reply, its chunks, and the digests fetched again whole
    after it was sent (its pieces of those are void: their results are ignored)."""

    future: asyncio.Future
    chunks: list
    superseded: set = field(default_factory=set)


@dataclass
class DirectFlight:
    """One ``SupplyTo`` sent: its reply, its requests, whether where the sender cuts it was
    known (``expected_cut``), the next piece asked for already (``cut``: digest and offset) and
    the digests fetched again whole after it was sent (its pieces of those are void)."""

    future: asyncio.Future
    batch: list
    known: bool
    cut: Optional[tuple]
    superseded: set = field(default_factory=set)


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
        # Resumed prefixes (an initial sync has none: no 100k-entry map of zeros).
        offsets = {item.path: item.offset for item in needs if item.offset}
        tracker.expect(sizes, offsets)
        rate, sent, started = test_setting(TEST_RATE_VARIABLE), 0, time.monotonic()
        # Large files: each item may carry a resume offset and a delta base (see agent.transfer);
        # ``current`` is what to ask for each digest (raw again after a refetch).
        current = {item.digest: item for item in needs}
        counts = TransferCounts(resumed_bytes=sum(offsets.values()))
        queue = deque((item, item.offset) for item in needs)
        stale: set = set()  # digests refetched whole: drop their pieces already fetched
        writes: deque = deque()  # the StageChunks writes in flight, oldest first
        problems: list = []

        def acknowledge(chunks, ack: m.StageAck, ignored: set, later) -> set:
            """Account for the receiver's ``ack`` of ``chunks`` (``ignored``: digests fetched
            again whole after they were sent, their results void): queue what it asks to fetch
            again (pieces of those already sent in the ``later`` writes are void too), count the
            progress and keep the problems. Returns the digests queued again."""
            if not ignored and not ack.refetch and not ack.problems:  # the usual case
                tracker.acknowledged(chunks, ())
                return set()
            refetched = refetch_whole([i for i in ack.refetch if i.digest not in ignored],
                                      current, counts, queue)
            for other in later:  # sent already: their pieces of these digests are void
                other.superseded |= refetched
            retried = {c.path for c in chunks if c.digest in refetched | ignored}
            tracker.acknowledged([c for c in chunks if c.path not in retried],
                                 (p.path for p in ack.problems if p.path not in retried))
            for digest in refetched:
                tracker.restarted(current[digest].path)
            void = {c.path for c in chunks if c.digest in ignored}
            problems.extend(p for p in ack.problems if p.path not in void)
            return refetched

        async def settle(write: InFlight) -> None:
            """Account for the oldest write's ack; queue what it asks to fetch again."""
            nonlocal stale
            ack = await write.future
            ignored = set(write.superseded)  # refetched whole after this write was sent
            stale |= acknowledge(write.chunks, ack, ignored,
                                 [later for later in writes if later is not write])

        async def throttle(chunks) -> None:
            """Test-only: hold the transfer to ``TEST_RATE_VARIABLE`` bytes per second."""
            if rate:
                await pace(sum(c.payload for c in chunks))

        async def pace(size: int) -> None:
            nonlocal sent
            sent += size
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))

        async def via_stager() -> None:
            """The sender supplies to the stager, which writes to the receiver (``Supply``)."""
            nonlocal stale
            try:
                while True:
                    batch = take_batch(queue, sizes, BATCH_BYTES, BATCH_FILES) if queue else []
                    fetch = (asyncio.ensure_future(sender.request(m.Supply(batch, BATCH_BYTES),
                                                                  timeout=REQUEST_TIMEOUT))
                             if batch else None)
                    # Keep at most WRITES_IN_FLIGHT - 1 writes while fetching (all settled at
                    # the end).
                    while writes and (fetch is None or len(writes) >= WRITES_IN_FLIGHT):
                        await settle(writes[0])
                        writes.popleft()
                    if fetch is None:
                        if queue:  # files to fetch again whole (an ack's refetch)
                            stale = set()  # no fetch was in flight
                            continue
                        break
                    supplied = await fetch
                    served = {(c.path, c.offset) for c in supplied.chunks}
                    chunks = [c for c in supplied.chunks if c.digest not in stale]
                    unserved = [r for r in batch
                                if (r.path, r.offset) not in served and r.digest not in stale]
                    stale = set()
                    for request in reversed(unserved):
                        queue.appendleft((current[request.digest], request.offset))
                    if chunks and not chunks[-1].eof:
                        last = chunks[-1]
                        queue.appendleft((current[last.digest], last.offset + last.output))
                    counts.count(chunks)
                    writes.append(InFlight(asyncio.ensure_future(
                        receiver.request(m.StageChunks(chunks), timeout=REQUEST_TIMEOUT)), chunks))
                    await throttle(chunks)
            except BaseException:
                await let_finish([write.future for write in writes])
                raise
            finally:
                release([write.future for write in writes])

        async def direct() -> None:
            """The sender writes to the receiver itself (``SupplyTo``)."""
            flights: deque = deque()  # the SupplyTo requests in flight, oldest first
            address = self.context.args[start.receiver]
            try:
                while True:
                    # Ask ahead while what comes next is known (every batch but one whose
                    # cut the sender decides: then its reply says where to go on).
                    while (queue and len(flights) < WRITES_IN_FLIGHT
                           and all(f.known for f in flights)):
                        batch = take_batch(queue, sizes, BATCH_BYTES, BATCH_FILES)
                        known, end = expected_cut(batch, sizes, BATCH_BYTES)
                        cut = None
                        if end is not None:
                            cut = (batch[-1].digest, end)
                            queue.appendleft((current[cut[0]], end))
                        if rate:  # test-only: one request at a time, each paced before it goes
                            await pace(min(BATCH_BYTES, sum(
                                max(0, sizes.get(r.path, 0) - r.offset) for r in batch)))
                        flights.append(DirectFlight(asyncio.ensure_future(sender.request(
                            m.SupplyTo(batch, BATCH_BYTES, address),
                            timeout=2 * REQUEST_TIMEOUT)), batch, known, cut))
                        if rate:
                            break
                    if not flights:
                        break
                    reply = await flights[0].future
                    flight = flights.popleft()
                    settle_direct(flight, reply, flights)
            except BaseException:
                await let_finish([flight.future for flight in flights])
                raise
            finally:
                release([flight.future for flight in flights])

        def settle_direct(flight: "DirectFlight", reply: m.SuppliedTo, later: deque) -> None:
            """Account for a ``SupplyTo``'s reply: what the receiver acknowledged, what to
            fetch again whole, and what to read next where the sender did not read what was
            expected (``expected_cut``)."""
            ignored = set(flight.superseded)
            dropped = acknowledge(reply.chunks, reply.ack, ignored, later) | ignored
            counts.count([c for c in reply.chunks if c.digest not in ignored])
            # Where to go on: what was not read, and the rest of a file read in part.
            served = {(c.path, c.offset) for c in reply.chunks}
            unserved = [r for r in flight.batch
                        if (r.path, r.offset) not in served and r.digest not in dropped]
            last = reply.chunks[-1] if reply.chunks else None
            actual = None
            if last is not None and not last.eof and last.digest not in dropped:
                actual = (last.digest, last.offset + last.output)
            cut = flight.cut if flight.cut and flight.cut[0] not in dropped else None
            if flight.known and cut is not None and actual != cut:
                # The file was not cut where expected (it changed while read).
                index = next((i for i, (item, offset) in enumerate(queue)
                              if item.digest == cut[0] and offset == cut[1]), None)
                if index is not None:  # its next piece is not asked yet: go on from here
                    del queue[index]
                    cut = None
                else:  # asked already, at the wrong offset: the file starts again
                    restart(cut[0], later)
            if not flight.known:
                cut = None
            for request in reversed(unserved):
                if cut is None or request.digest != cut[0]:
                    queue.appendleft((current[request.digest], request.offset))
            if actual is not None and (cut is None or actual[0] != cut[0]):
                queue.appendleft((current[actual[0]], actual[1]))

        def restart(digest: bytes, later: deque) -> None:
            """Fetch ``digest`` again whole (its pieces in flight are void), or, if it was
            fetched again whole already in this pass, give up on it (a problem: the cycle runs
            again)."""
            for other in later:
                other.superseded.add(digest)
            path = current[digest].path
            if refetch_whole([current[digest]], current, counts, queue):
                tracker.restarted(path)
                return
            kept = [entry for entry in queue if entry[0].digest != digest]
            queue.clear()
            queue.extend(kept)
            problems.append(Problem(path, "file changed while it was sent"))
            tracker.failed(path)

        sender_welcome = await sender.request(m.EndpointHello(), timeout=REQUEST_TIMEOUT)
        # Straight from sender to receiver where the sender can (a local endpoint actor) and no
        # delta is asked for (a delta's pieces cannot be cut ahead of its reply).
        straight = sender_welcome.supply_to and all(item.signature is None for item in needs)
        if straight:
            await direct()
        else:
            await via_stager()
        tracker.finish()
        self.log.info("staging done", files=len(needs), expected_bytes=sum(max(0, s) for s in
                      sizes.values()), content_bytes=counts.content_bytes,
                      resumed_bytes=counts.resumed_bytes, delta_files=len(counts.delta_files),
                      refetched=len(counts.refetched), direct=straight)
        if problems:
            self.log.info("staging problems", count=len(problems), first=problems[0].error)
            reply.problems = problems  # the reconciler says why those files are missing
        return reply
