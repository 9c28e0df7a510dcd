"""The actor runtime's opt-in overlap of selected requests (``actors.runtime.admission``).

The rule table is pure; the real test runs an actor process (``actors.runtime.process.run``)
whose handler is slow, and reads from the replies when each request started and ended."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import tempfile
import time

import pytest
import zmq.asyncio

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.actors.runtime.admission import admit, is_concurrent
from mutagen_actors.actors.runtime.launch import ActorLaunch
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.errors import RequestTimeout
from mutagen_actors.wire.messages.actor import Stop
from mutagen_actors.wire.sockets import DealerClient

SLOW = 0.4  # seconds each request of the test actor takes


@pytest.mark.parametrize("concurrent, running, bound, starts", [
    (False, 0, 1, True),    # nothing running: an exclusive request starts
    (False, 1, 4, False),   # it waits for every concurrent request in flight (Transition after StageChunks)
    (False, 3, 4, False),
    (True, 0, 2, True),     # a concurrent request starts beside nothing
    (True, 1, 2, True),     # ... and beside another one, up to the bound
    (True, 2, 2, False),    # at the bound it waits
    (True, 0, 1, True),     # bound 1 (no opt-in): one at a time
    (True, 1, 1, False),
    (True, 1, 0, False),    # a bound below 1 counts as 1
])
def test_admission_rule(concurrent, running, bound, starts):
    assert admit(concurrent, running, bound) is starts


@pytest.mark.parametrize("body, types, bound, concurrent", [
    (m.Supply([], 1), (m.Supply, m.StageChunks), 2, True),
    (m.StageChunks([]), (m.Supply, m.StageChunks), 2, True),
    (m.Transition("e", []), (m.Supply, m.StageChunks), 2, False),
    (m.Supply([], 1), (m.Supply,), 1, False),   # bound 1: nothing overlaps
    (m.Supply([], 1), (), 4, False),            # no types named: nothing overlaps
])
def test_which_requests_may_overlap(body, types, bound, concurrent):
    assert is_concurrent(body, types, bound) is concurrent


class SlowActor(Actor):
    """Answers every request after ``SLOW`` seconds with ``Sizes([start_us, end_us])``."""

    CONCURRENT = (m.Supply,)
    MAX_CONCURRENT = 2

    async def handle(self, message):
        start = time.monotonic()
        await asyncio.sleep(SLOW)
        return m.Sizes([int(start * 1e6), int(time.monotonic() * 1e6)])


@pytest.fixture
def slow_actor():
    directory = tempfile.mkdtemp(prefix="mutagen-actors-concurrent-")
    mailbox = f"ipc://{directory}/mailbox"
    launch = ActorLaunch("s", "slow", f"{__name__}:SlowActor", mailbox, os.getpid())
    from mutagen_actors.actors.runtime import process

    child = multiprocessing.get_context("fork").Process(target=process.run, args=(launch, None))
    child.start()
    try:
        yield mailbox
    finally:
        child.join(5)
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
            child.join(5)
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def _intervals(mailbox: str, bodies: list) -> list[tuple[float, float]]:
    """Send ``bodies`` at once (in order), wait for every reply, stop the actor."""
    async def exchange():
        context = zmq.asyncio.Context()
        client = DealerClient(context, mailbox)
        try:
            replies = await asyncio.gather(*(client.request(body, timeout=30) for body in bodies))
            try:  # the reply to Stop may be lost (the mailbox closes with linger 0)
                await client.request(Stop(), timeout=5)
            except RequestTimeout:
                pass
        finally:
            client.close()
            context.destroy(linger=0)
        return [(r.sizes[0] / 1e6, r.sizes[1] / 1e6) for r in replies]

    return asyncio.run(exchange())


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_opted_in_requests_overlap_up_to_the_bound_and_others_run_alone(slow_actor):
    supply, sizes, stage = m.Supply([], 1), m.FileSizes([]), m.StageChunks([])
    # arrival order: S1 S2 S3 | F1 | S4 | C1 C2 (StageChunks is not opted in by this actor)
    got = _intervals(slow_actor, [supply, supply, supply, sizes, supply, stage, stage])
    s1, s2, s3, f1, s4, c1, c2 = got
    assert _overlap(s1, s2)                         # two opted-in requests run together
    assert s3[0] >= min(s1[1], s2[1])               # the third waits for room (bound 2)
    assert f1[0] >= max(s1[1], s2[1], s3[1])        # an exclusive one waits for all before it
    assert s4[0] >= f1[1]                           # and nothing after it starts before it ends
    assert c1[0] >= s4[1] and c2[0] >= c1[1]        # types not opted in: one at a time
    starts = [interval[0] for interval in got]
    assert starts == sorted(starts)                 # started in arrival order
