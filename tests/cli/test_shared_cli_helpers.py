"""The helpers sync and forward commands share (``flag_values``, ``session_output``,
``output.compact_duration``): pure, table-driven."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from mutagen_actors.cli import flag_values, session_output
from mutagen_actors.cli.output import compact_duration
from mutagen_actors.cli.selecting import ArgumentError
from mutagen_actors.wire.messages.sync import EndpointUrl

D = session_output.DELIMITER_LINE


def _layer(common=None, alpha=None, beta=None):
    return NS(common=NS(watch_mode=common), alpha=NS(watch_mode=alpha), beta=NS(watch_mode=beta))


@pytest.mark.parametrize("layer, side, option, expected", [
    (_layer(alpha="force-poll"), "alpha", "watch_mode", "--watch-mode-alpha"),
    (_layer(common="portable", beta="no-watch"), "beta", "watch_mode", "--watch-mode-beta"),
    (_layer(common="portable", beta="no-watch"), "alpha", "watch_mode", "--watch-mode"),
    (_layer(), "alpha", "watch_mode", "configuration file"),
    (_layer(alpha="x"), "alpha", "socket_watch_mode", "--socket-watch-mode-alpha"),
])
def test_flag_origin_names_the_flag_that_set_a_side_setting(layer, side, option, expected):
    assert flag_values.flag_origin(layer, "watch_mode", side, option) == expected


@pytest.mark.parametrize("options, key, expected", [
    ({"a": "x"}, "a", "x"), ({"a": ""}, "a", None), ({"a": None}, "a", None), ({}, "a", None),
    ({"a": 5}, "a", "5"),
])
def test_given(options, key, expected):
    assert flag_values.given(options, key) == expected


@pytest.mark.parametrize("options, expected", [
    ({}, ("", {})),
    ({"name": "web", "labels": ["a=1", "b"]}, ("web", {"a": "1", "b": ""})),
    ({"name": "1bad"}, "--name: "),
    ({"labels": ["=x"]}, "--label: "),
])
def test_name_and_labels(options, expected):
    if isinstance(expected, tuple):
        assert flag_values.name_and_labels(options, ArgumentError) == expected
    else:
        with pytest.raises(ArgumentError) as raised:
            flag_values.name_and_labels(options, ArgumentError)
        assert str(raised.value).startswith(expected)


@pytest.mark.parametrize("blocks, expected", [
    ([], [D, "none", D]),
    ([["a"]], [D, "a", D]),
    ([["a", "b"], ["c"]], [D, "a", "b", D, "c", D]),
])
def test_delimited(blocks, expected):
    assert session_output.delimited(blocks, "none") == expected


@pytest.mark.parametrize("state, labels, expected", [
    (NS(name="", identifier="s1", labels={"b": "", "a": "1"}), False, ["Identifier: s1"]),
    (NS(name="n", identifier="s1", labels={"b": "", "a": "1"}), True,
     ["Name: n", "Identifier: s1", "Labels:", "\ta: 1", "\tb: <empty>"]),
    (NS(name="", identifier="s1", labels={}), True, ["Identifier: s1"]),
])
def test_heading_lines(state, labels, expected):
    assert session_output.heading_lines(state, labels) == expected


@pytest.mark.parametrize("value, expected", [
    (NS(a=0, b="", c=None), {}),
    (NS(a=3, b="x", c=None), {"A": 3, "B": "x"}),
    (NS(b="x"), {"B": "x"}),  # a missing attribute counts as unset
])
def test_set_fields_keeps_set_values_in_order(value, expected):
    data = session_output.set_fields(value, {"A": "a", "B": "b", "C": "c"})
    assert list(data.items()) == list(expected.items())


@pytest.mark.parametrize("url, expected", [
    (EndpointUrl(path="/x"), {"protocol": "local", "where": "/x"}),
    (EndpointUrl("ssh", "u", "h", 22, "p", {}),
     {"protocol": "ssh", "user": "u", "host": "h", "port": 22, "where": "p"}),
    (EndpointUrl("docker", "", "c", 0, "/p", {"A": "1"}),
     {"protocol": "docker", "host": "c", "where": "/p", "environment": {"A": "1"}}),
])
def test_url_json(url, expected):
    assert list(session_output.url_json(url, "where").items()) == list(expected.items())


@pytest.mark.parametrize("paused, status, expected", [
    (True, "watching", "[Paused]"), (False, "watching", "Watching"), (False, "odd", "odd"),
])
def test_status_text(paused, status, expected):
    state = NS(paused=paused, status=status)
    assert session_output.status_text(state, {"watching": "Watching"}) == expected


@pytest.mark.parametrize("seconds, expected", [
    (0, "0s"), (59, "59s"), (60, "1m00s"), (3599, "59m59s"), (3600, "1h00m"), (3725, "1h02m"),
])
def test_compact_duration(seconds, expected):
    assert compact_duration(seconds) == expected
