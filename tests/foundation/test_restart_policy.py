"""The restart policy's pure parts, with fake time."""

from __future__ import annotations

import pytest

from mutagen_actors.supervisor.restart import (
    Restart, RestartBudget, Strategy, children_to_restart, should_restart)
from mutagen_actors.wire.heartbeat import Liveness


@pytest.mark.parametrize(
    "max_restarts, period, times, allowed",
    [
        (3, 10.0, [0, 1, 2], [True, True, True]),
        (3, 10.0, [0, 1, 2, 3], [True, True, True, False]),
        # Restarts older than the period no longer count.
        (3, 10.0, [0, 1, 2, 10, 11, 12], [True] * 6),
        (3, 10.0, [0, 1, 2, 9.999], [True, True, True, False]),
        (1, 5.0, [0, 5, 10], [True, True, True]),
        (1, 5.0, [0, 4.9], [True, False]),
        (0, 5.0, [0], [False]),
        # A crash loop: 6 restarts in the same instant with the default budget of 5.
        (5, 30.0, [7.0] * 6, [True] * 5 + [False]),
    ],
)
def test_restart_budget_allows_at_most_n_restarts_within_the_period(max_restarts, period,
                                                                     times, allowed):
    budget = RestartBudget(max_restarts, period)
    decisions = []
    for now in times:
        budget, ok = budget.register(now)
        decisions.append(ok)
    assert decisions == allowed


def test_restart_budget_is_immutable_and_describes_itself():
    budget = RestartBudget(2, 60)
    after, _ = budget.register(1.0)
    assert budget.restarts == () and after.restarts == (1.0,)
    assert budget.describe() == "2 restarts within 60 s"


@pytest.mark.parametrize(
    "restart, normal, expected",
    [
        (Restart.PERMANENT, True, True),
        (Restart.PERMANENT, False, True),
        (Restart.TRANSIENT, True, False),
        (Restart.TRANSIENT, False, True),
        (Restart.TEMPORARY, True, False),
        (Restart.TEMPORARY, False, False),
    ],
)
def test_should_restart(restart, normal, expected):
    assert should_restart(restart, normal) is expected


@pytest.mark.parametrize(
    "strategy, exited, expected",
    [
        (Strategy.ONE_FOR_ONE, "a", ["a"]),
        (Strategy.ONE_FOR_ONE, "c", ["c"]),
        (Strategy.REST_FOR_ONE, "a", ["a", "b", "c"]),
        (Strategy.REST_FOR_ONE, "b", ["b", "c"]),
        (Strategy.REST_FOR_ONE, "c", ["c"]),
    ],
)
def test_children_to_restart(strategy, exited, expected):
    assert children_to_restart(strategy, ["a", "b", "c"], exited) == expected


@pytest.mark.parametrize(
    "events, now, ping_due, dead",
    [
        ([], 0.0, True, False),
        ([("ping", 0.0)], 4.9, False, False),
        ([("ping", 0.0)], 5.0, True, False),
        ([("ping", 0.0), ("heard", 1.0)], 16.0, True, False),
        ([("ping", 0.0), ("heard", 1.0)], 16.1, True, True),
        ([("heard", 3.0), ("heard", 2.0)], 17.5, True, False),  # the clock never goes back
    ],
)
def test_heartbeat_liveness(events, now, ping_due, dead):
    liveness = Liveness(interval=5.0, misses=3, last_heard=0.0)
    for kind, at in events:
        liveness = liveness.pinged(at) if kind == "ping" else liveness.heard(at)
    assert (liveness.ping_due(now), liveness.dead(now)) == (ping_due, dead)
