"""``within(awaitable, timeout)``: ``asyncio.wait_for`` without its lost cancellations.

Before Python 3.12, ``asyncio.wait_for`` returns the inner result when the caller's
cancellation arrives in the same event-loop turn as that result: the cancellation is lost and
the cancelled task carries on (a supervisor being stopped then waited forever). ``within``
runs the awaitable as its own task and waits with ``asyncio.wait``, which always lets the
caller's cancellation through. Contract otherwise as ``wait_for``: the result, or
``asyncio.TimeoutError`` past ``timeout`` with the inner task cancelled and finished.
"""

from __future__ import annotations

import asyncio


async def within(awaitable, timeout: float):
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # the caller is gone: whatever it ended with is nobody's news
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        if task.cancelled():
            raise asyncio.TimeoutError
    return task.result()
