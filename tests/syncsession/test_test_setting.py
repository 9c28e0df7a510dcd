"""``job_actor.test_setting``: the test-only numbers the stager and the transitioner read from
the daemon's environment (a rate cap, a hold) are 0 unless set to a positive number."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.syncsession.job_actor import test_setting as read_setting

VARIABLE = "MUTAGEN_ACTORS_TEST_SETTING_UNDER_TEST"


@pytest.mark.parametrize("value, expected", [
    (None, 0.0), ("", 0.0), ("0", 0.0), ("2.5", 2.5), ("2000000", 2e6), ("-1", 0.0),
    ("fast", 0.0),
])
def test_setting_is_a_nonnegative_number_or_nothing(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(VARIABLE, raising=False)
    else:
        monkeypatch.setenv(VARIABLE, value)
    assert read_setting(VARIABLE) == expected
