"""Deadlines that do not count the time a user spends answering a prompt.

A connect has a deadline (5 s for SSH) so an unreachable host fails fast; a question relayed to
the user's terminal (unknown host key, password) must not eat that deadline. ``PromptClock``
wraps a ``Prompter`` and measures the wall time during which at least one of its questions was
open; ``within(awaitable, timeout, clock)`` is ``asyncio.wait_for`` whose deadline moves later by
that time. The question itself has its own deadline (the relay's), so nothing waits forever.

Failure rules: ``within`` raises ``asyncio.TimeoutError`` (and cancels the awaitable) when the
time not spent in prompts passes ``timeout``; with ``clock`` None it is plain ``wait_for``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Optional

from . import Prompter


class PromptClock:
    """A ``Prompter`` (call it like one) that forwards to ``prompter`` and measures its time."""

    def __init__(self, prompter: Prompter, now: Callable[[], float] = time.monotonic):
        self._prompter = prompter
        self._now = now
        self._spent = 0.0
        self._open = 0
        self._since = 0.0

    def spent(self) -> float:
        """Seconds during which a question was open (the current one included)."""
        if self._open:
            return self._spent + (self._now() - self._since)
        return self._spent

    def opened(self) -> None:
        if not self._open:
            self._since = self._now()
        self._open += 1

    def closed(self) -> None:
        self._open -= 1
        if not self._open:
            self._spent += self._now() - self._since

    async def __call__(self, kind: str, message: str, echo: bool) -> Optional[str]:
        self.opened()
        try:
            return await self._prompter(kind, message, echo)
        finally:
            self.closed()


def clocked(prompter: Prompter | None) -> PromptClock | None:
    """``prompter`` wrapped in a ``PromptClock`` (itself if it is one; None stays None)."""
    if prompter is None or isinstance(prompter, PromptClock):
        return prompter
    return PromptClock(prompter)


async def within(awaitable: Awaitable, timeout: float, clock: PromptClock | None):
    """Await ``awaitable`` with ``timeout`` seconds not counting ``clock``'s prompt time."""
    if clock is None:
        return await asyncio.wait_for(awaitable, timeout)
    task = asyncio.ensure_future(awaitable)
    start = time.monotonic()
    try:
        while True:
            remaining = start + timeout + clock.spent() - time.monotonic()
            if remaining <= 0:
                raise asyncio.TimeoutError()
            done, _ = await asyncio.wait({task}, timeout=remaining)
            if done:
                return task.result()
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
