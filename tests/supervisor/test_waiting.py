"""Bounded waits that never lose a cancellation (supervisor/waiting.py).

The regression: a session stopped at the moment its restarted forwarder became ready lost the
stop's cancellation inside ``asyncio.wait_for`` (Python < 3.12), carried on, and ``stop()``
waited forever, so ``forward create`` never answered."""

from __future__ import annotations

import asyncio
import time

import pytest

from mutagen_actors.supervisor.waiting import cancel_and_wait, done_within


@pytest.mark.parametrize("when, timeout, expected", [
    ("already", 1.0, True),      # done before the wait: True at once
    ("soon", 5.0, True),         # done during the wait
    ("never", 0.05, False),      # the deadline passes: False, the future is left alone
])
def test_done_within(when, timeout, expected):
    async def main():
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if when == "already":
            future.set_result(1)
        elif when == "soon":
            loop.call_later(0.01, future.set_result, 1)
        started = time.monotonic()
        result = await done_within(future, timeout)
        return result, future.cancelled(), time.monotonic() - started

    result, cancelled, elapsed = asyncio.run(main())
    assert result is expected and not cancelled
    assert elapsed < timeout + 1.0


def test_a_cancellation_in_the_same_turn_as_the_result_is_not_lost():
    async def main():
        future = asyncio.get_running_loop().create_future()
        waiter = asyncio.ensure_future(done_within(future, 10.0))
        await asyncio.sleep(0)  # the waiter is suspended on the future
        future.set_result("ready")  # its wake-up is scheduled...
        waiter.cancel()  # ...and the cancellation lands before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert future.result() == "ready"  # the awaited future itself is untouched

    asyncio.run(main())


def test_cancel_and_wait_ends_a_task_that_swallows_a_cancellation():
    async def stubborn():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass  # swallowed once, as wait_for did
        await asyncio.sleep(60)  # the second cancellation ends it

    async def main():
        task = asyncio.ensure_future(stubborn())
        await asyncio.sleep(0)
        started = time.monotonic()
        await asyncio.wait_for(cancel_and_wait(task, retry=0.05), 10)
        return task.cancelled(), time.monotonic() - started

    cancelled, elapsed = asyncio.run(main())
    assert cancelled and elapsed < 5


# ------------------------------------------------------- wire.deadline.within (DealerClient)

from mutagen_actors.wire.deadline import within  # noqa: E402 - grouped with its tests


@pytest.mark.parametrize("delay, timeout, expected", [
    (0.0, 1.0, "result"),
    (0.01, 5.0, "result"),
    (10.0, 0.05, "timeout"),
])
def test_within_returns_or_times_out_and_cancels_the_inner_work(delay, timeout, expected):
    async def main():
        inner_cancelled = asyncio.Event()

        async def work():
            try:
                await asyncio.sleep(delay)
                return "result"
            except asyncio.CancelledError:
                inner_cancelled.set()
                raise

        try:
            return await within(work(), timeout), inner_cancelled.is_set()
        except asyncio.TimeoutError:
            return "timeout", inner_cancelled.is_set()

    outcome, cancelled = asyncio.run(main())
    assert outcome == expected
    assert cancelled is (expected == "timeout")


def test_within_never_loses_the_callers_cancellation():
    async def main():
        future = asyncio.get_running_loop().create_future()
        waiter = asyncio.ensure_future(within(future, 10.0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the inner task is suspended on the future
        future.set_result("reply")
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter

    asyncio.run(main())
