"""``actors.runtime.process.set_within`` (the actor runtime's memory tidy waits with it): a
cancel that comes while the wait is not over is never lost, even when the event was set just
before (``asyncio.wait_for`` on Python 3.11 returned instead, and an actor asked to stop right
after answering a request never stopped: it was killed after its stop deadline)."""

from __future__ import annotations

import asyncio

import pytest

from mutagen_actors.actors.runtime.process import set_within


async def _cancel_after_set(steps: int) -> tuple[bool, str]:
    """Set the event, let ``steps`` loop iterations pass, cancel the wait: (whether the wait
    had ended before the cancel, what the wait did)."""
    event = asyncio.Event()
    task = asyncio.ensure_future(set_within(event, 10.0))
    await asyncio.sleep(0)
    event.set()
    for _ in range(steps):
        await asyncio.sleep(0)
    ended = task.done()
    task.cancel()
    try:
        return ended, f"returned {await task}"
    except asyncio.CancelledError:
        return ended, "cancelled"


@pytest.mark.parametrize("steps", range(6))
def test_a_cancel_before_the_wait_ended_is_kept(steps):
    ended, outcome = asyncio.run(_cancel_after_set(steps))
    assert outcome == ("returned True" if ended else "cancelled")


@pytest.mark.parametrize("set_first, expected", [(True, True), (False, False)])
def test_set_or_timed_out(set_first, expected):
    async def main():
        event = asyncio.Event()
        if set_first:
            event.set()
        return await set_within(event, 0.05)

    assert asyncio.run(main()) is expected
