"""Which request an actor may start now: the pure rule behind ``Actor.CONCURRENT``.

By default an actor handles one request at a time, in arrival order. An actor may opt in to
overlapping selected requests: ``CONCURRENT`` names the message types that may run beside each
other, ``MAX_CONCURRENT`` bounds how many of them run at once. The runtime starts requests
strictly in arrival order and applies ``admit`` to the oldest waiting request:

- a *concurrent* request starts while fewer than ``bound`` requests are running (only
  concurrent ones can be running then, see below); otherwise it waits for one to finish;
- any other request (*exclusive*) starts only when nothing is running, and nothing else starts
  until it has finished.

So an exclusive request never overlaps any other request: every concurrent request that arrived
before it has finished before it starts, and none that arrives after it starts before it ends
(e.g. a ``Transition`` never overlaps a ``StageChunks``). Concurrent requests start in arrival
order (a handler that sends before its first ``await`` keeps that order downstream) but may end
in any order; their replies go out as they end.
"""

from __future__ import annotations


def is_concurrent(body, concurrent_types: tuple, bound: int) -> bool:
    """True when ``body`` may overlap other requests of ``concurrent_types`` (``bound`` > 1)."""
    return bound > 1 and bool(concurrent_types) and isinstance(body, concurrent_types)


def admit(concurrent: bool, running: int, bound: int) -> bool:
    """May the oldest waiting request start now, with ``running`` requests being handled?"""
    if concurrent:
        return running < max(1, bound)
    return running == 0
