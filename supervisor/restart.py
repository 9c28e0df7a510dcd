"""Restart policy, Erlang/OTP style, as pure functions and a pure state machine.

- ``Restart``: ``permanent`` (always restarted), ``transient`` (restarted only after an abnormal
  exit), ``temporary`` (never restarted).
- ``Strategy``: ``one_for_one`` (restart only the child that exited) or ``rest_for_one`` (also
  restart the children started after it, which may depend on it).
- ``RestartBudget``: at most ``max_restarts`` restarts within any ``period`` seconds; the clock
  is an argument, so tests use fake time. Past the budget the owner halts instead of looping.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Restart(str, enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(str, enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    REST_FOR_ONE = "rest_for_one"


def should_restart(restart: Restart, normal_exit: bool) -> bool:
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return not normal_exit
    return False


def children_to_restart(strategy: Strategy, order: list[str], exited: str) -> list[str]:
    """Ids to (re)start, in start order, after ``exited`` stopped."""
    if strategy is Strategy.ONE_FOR_ONE:
        return [exited]
    return order[order.index(exited):]


@dataclass(frozen=True)
class RestartBudget:
    max_restarts: int = 5
    period: float = 30.0
    restarts: tuple = field(default=())  # times of the restarts inside the current window

    def register(self, now: float) -> tuple["RestartBudget", bool]:
        """Count one restart at ``now``; returns the new budget and whether it is allowed."""
        recent = tuple(t for t in self.restarts if now - t < self.period) + (now,)
        return RestartBudget(self.max_restarts, self.period, recent), len(recent) <= self.max_restarts

    def describe(self) -> str:
        return f"{self.max_restarts} restarts within {self.period:g} s"
