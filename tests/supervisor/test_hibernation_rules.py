"""The pure rules of hibernation: the idle delay setting, when an idle actor may exit, and how
long a woken child is counted on without asking again."""

from __future__ import annotations

import math

import pytest

from mutagen_actors.actors.runtime.process import IDLE_RECHECK, idle_due
from mutagen_actors.actors.syncsession.wakeup import lease_end
from mutagen_actors.supervisor.child_spec import IDLE_EXIT, IDLE_EXIT_VARIABLE, idle_exit_setting


@pytest.mark.parametrize("value, expected", [
    (None, IDLE_EXIT),
    ("1", 1.0),
    ("0.5", 0.5),
    ("86400", 86400.0),
    ("0", IDLE_EXIT),          # "never wake up" is not a setting: out of range
    ("0.05", IDLE_EXIT),
    ("-3", IDLE_EXIT),
    ("1e9", IDLE_EXIT),
    ("soon", IDLE_EXIT),
    ("", IDLE_EXIT),
])
def test_idle_exit_setting(value, expected):
    environ = {} if value is None else {IDLE_EXIT_VARIABLE: value}
    assert idle_exit_setting(environ) == expected


@pytest.mark.parametrize("last_work, now, queued, handling, busy, expected", [
    (100.0, 100.0, 0, False, False, 30.0),          # just worked: the whole delay to go
    (100.0, 120.0, 0, False, False, 10.0),
    (100.0, 130.0, 0, False, False, 0.0),           # quiet for the delay: exit now
    (100.0, 500.0, 0, False, False, 0.0),
    (100.0, 130.0, 1, False, False, IDLE_RECHECK),  # a request waits: not idle
    (100.0, 130.0, 0, True, False, IDLE_RECHECK),   # a request is being handled
    (100.0, 130.0, 0, False, True, IDLE_RECHECK),   # a job runs with nobody polling it
    (100.0, 110.0, 0, False, True, 20.0),
])
def test_idle_due(last_work, now, queued, handling, busy, expected):
    assert idle_due(last_work, 30.0, now, queued=queued, handling=handling,
                    busy=busy) == pytest.approx(expected)


def test_idle_due_rechecks_no_later_than_a_short_delay():
    assert idle_due(0.0, 0.2, 5.0, queued=0, handling=False, busy=True) == pytest.approx(0.2)


@pytest.mark.parametrize("contact, idle_exit, expected", [
    (10.0, 30.0, 25.0),      # counted on for half its delay
    (10.0, 1.0, 10.5),
    (10.0, 0.0, math.inf),   # never hibernates: no need to ask again
    (10.0, -1.0, math.inf),
])
def test_lease_end(contact, idle_exit, expected):
    assert lease_end(contact, idle_exit) == expected
