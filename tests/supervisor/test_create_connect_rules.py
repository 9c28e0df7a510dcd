"""The rules ``sync create`` answers a connect with (``supervisor.sync_manager``): which side's
failed connect attempt it refuses with, and what a connect past its deadline says."""

from __future__ import annotations

import pytest

from mutagen_actors.supervisor.sync_manager import connect_failure, not_connected
from mutagen_actors.wire.messages import endpoint as em
from mutagen_actors.wire.messages import sync as sm


def side(connected: bool = False, error: str = "") -> sm.EndpointState:
    return sm.EndpointState(url=sm.EndpointUrl(), connected=connected, connect_error=error)


def progress(alpha: sm.EndpointState, beta: sm.EndpointState,
             last_error: str = "") -> em.SessionProgress:
    return em.SessionProgress("connecting-alpha", 1, 0, last_error, [], alpha, beta, 0, 0, "")


@pytest.mark.parametrize("alpha, beta, expected", [
    (side(), side(), None),  # both still connecting
    (side(True), side(error="refused"), ("beta", "refused")),
    (side(error="no python3"), side(True), ("alpha", "no python3")),
    (side(error="a"), side(error="b"), ("alpha", "a")),  # alpha first
    (side(), side(error="b"), ("beta", "b")),  # beta failed while alpha still connects
    (side(True, "old"), side(True), None),  # connected since: not a failure (any more)
])
def test_connect_failure(alpha, beta, expected):
    assert connect_failure(progress(alpha, beta)) == expected


@pytest.mark.parametrize("state, expected", [
    (None, "unable to connect to the endpoints within 90 s"),
    (progress(side(True), side()), "unable to connect to beta within 90 s"),
    (progress(side(), side()), "unable to connect to alpha and beta within 90 s"),
    (progress(side(True), side(), "connecting to host: Installing agent..."),
     "unable to connect to beta within 90 s (connecting to host: Installing agent...)"),
])
def test_not_connected(state, expected):
    assert not_connected(state, 90.0) == expected
