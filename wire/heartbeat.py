"""Heartbeat liveness as a small pure state machine (the clock is passed in).

A supervisor pings each actor every ``interval`` seconds; any answer counts as "heard". The
peer is considered dead when nothing was heard for ``interval * misses`` seconds (zguide's
Paranoid Pirate: liveness 3).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Liveness:
    interval: float
    misses: int = 3
    last_heard: float = 0.0
    last_ping: float = float("-inf")

    def heard(self, now: float) -> "Liveness":
        return replace(self, last_heard=max(self.last_heard, now))

    def pinged(self, now: float) -> "Liveness":
        return replace(self, last_ping=now)

    def ping_due(self, now: float) -> bool:
        return now - self.last_ping >= self.interval

    def dead(self, now: float) -> bool:
        return now - self.last_heard > self.interval * self.misses
