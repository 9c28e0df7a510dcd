"""Bounded waits that never lose the caller's cancellation.

``asyncio.wait_for`` before Python 3.12 returns the awaited result when a cancellation of the
caller arrives in the same event-loop turn as that result, and the cancellation is lost: a
session being stopped then carried on starting an actor and waited forever (a `forward create`
whose forwarder became ready at the moment the failed create stopped it never answered).
``done_within`` waits with ``asyncio.wait``, which always lets the cancellation through.
"""

from __future__ import annotations

import asyncio


async def done_within(future: asyncio.Future, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``future`` to be done; True if it is. ``future`` is
    never cancelled here (not on the timeout, not when the caller is cancelled); the caller's
    cancellation always propagates."""
    if future.done():
        return True
    done, _ = await asyncio.wait({future}, timeout=timeout)
    return bool(done)


async def cancel_and_wait(task: asyncio.Future, *, retry: float = 0.5) -> None:
    """Cancel ``task`` and wait until it is done, cancelling it again every ``retry`` seconds
    (a task can swallow a cancellation, as above, or be in a cleanup that ignores it once)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry)
    if not task.cancelled():
        task.exception()  # retrieved: the caller stops it, its failure is no news here
