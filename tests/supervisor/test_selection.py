"""Session selection and label selectors (reference §1.1 "Session selection")."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mutagen_actors.supervisor.selection import LabelSelector, select


@dataclass
class Session:
    id: str
    name: str
    created: float
    labels: dict = field(default_factory=dict)


WEB = Session("sync_web", "web", 3.0, {"env": "dev", "tier": "front"})
API = Session("sync_api", "api", 1.0, {"env": "prod", "tier": "back"})
DB = Session("sync_db", "db", 2.0, {"env": "prod"})
WEB2 = Session("sync_web2", "web", 4.0, {})
SESSIONS = [WEB, API, DB, WEB2]

# (selector, labels, matches)
SELECTORS = [
    ("", {"a": "1"}, True),
    ("env=dev", {"env": "dev"}, True),
    ("env=dev", {"env": "prod"}, False),
    ("env=dev", {}, False),
    ("env==dev", {"env": "dev"}, True),
    ("env!=dev", {"env": "prod"}, True),
    ("env!=dev", {}, True),  # absent counts as different
    ("env!=dev", {"env": "dev"}, False),
    ("env in (dev,prod)", {"env": "prod"}, True),
    ("env in (dev, prod)", {"env": "test"}, False),
    ("env in (dev)", {}, False),
    ("env notin (dev,prod)", {"env": "test"}, True),
    ("env notin (dev,prod)", {}, True),
    ("env notin (dev,prod)", {"env": "dev"}, False),
    ("env", {"env": ""}, True),
    ("env", {"other": "x"}, False),
    ("!env", {"other": "x"}, True),
    ("!env", {"env": "x"}, False),
    ("env=prod,tier=back", {"env": "prod", "tier": "back"}, True),
    ("env=prod,tier=back", {"env": "prod"}, False),
    ("  env = prod ,  ! tier  ", {"env": "prod"}, True),
    ("env=", {"env": ""}, True),
    ("env=", {"env": "x"}, False),
    ("example.com/team in (core,web),!legacy", {"example.com/team": "web"}, True),
    ("a=1,a!=1", {"a": "1"}, False),
]


@pytest.mark.parametrize("text, labels, expected", SELECTORS)
def test_label_selector_matching(text, labels, expected):
    assert LabelSelector.parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("env dev", "expected an operator (=, ==, !=, in, notin) or ',', found 'dev'"),
        ("env in dev", "expected '(' after 'in', found 'dev'"),
        ("env in (dev", "expected ',' or ')' in a value list, found the end"),
        ("env in ()", "'in' needs at least one value"),
        ("env=dev,", "expected a requirement after ',', found the end"),
        (",env", "expected a label key, found ','"),
        ("!", "expected a label key after '!', found the end"),
        ("env=a=b", "expected ',', found '='"),
        ("=dev", "expected a label key, found '='"),
        ("-env=dev", "invalid label key '-env'"),
        ("env=-dev", "invalid label value '-dev'"),
        ("env in (a b)", "expected ',' or ')' in a value list, found 'b'"),
        ("env)", "expected an operator (=, ==, !=, in, notin) or ',', found ')'"),
    ],
)
def test_malformed_selectors_name_the_selector(text, message):
    with pytest.raises(ValueError) as caught:
        LabelSelector.parse(text)
    assert f"invalid label selector {text!r}" in str(caught.value)
    assert message in str(caught.value)


def ids(sessions):
    return [s.id for s in sessions]


@pytest.mark.parametrize(
    "specifications, selector, all_, expected",
    [
        ([], "", True, ["sync_api", "sync_db", "sync_web", "sync_web2"]),  # oldest first
        (["web"], "", False, ["sync_web", "sync_web2"]),  # a name can match several
        (["sync_db", "api"], "", False, ["sync_api", "sync_db"]),
        (["web", "sync_web"], "", False, ["sync_web", "sync_web2"]),  # no duplicates
        ([], "env=prod", False, ["sync_api", "sync_db"]),
        ([], "!env", False, ["sync_web2"]),
        ([], "env=nothing", False, []),  # a selector may select nothing
    ],
)
def test_select(specifications, selector, all_, expected):
    assert ids(select(SESSIONS, specifications, selector, all_)) == expected


@pytest.mark.parametrize(
    "specifications, selector, all_, message",
    [
        ([], "", False, "no selection mechanisms present"),
        (["web"], "env=dev", False, "multiple selection mechanisms present"),
        (["web"], "", True, "multiple selection mechanisms present"),
        ([], "env=dev", True, "multiple selection mechanisms present"),
        (["web", "nope"], "", False, 'specification "nope" did not match any sessions'),
        (["sync_we"], "", False, 'specification "sync_we" did not match any sessions'),  # no prefixes
        ([], "env in", False, "invalid label selector 'env in'"),
    ],
)
def test_select_errors(specifications, selector, all_, message):
    with pytest.raises(ValueError) as caught:
        select(SESSIONS, specifications, selector, all_)
    assert str(caught.value).startswith(message)


def test_list_and_monitor_select_everything_by_default():
    assert ids(select(SESSIONS, [], "", False, default_all=True)) == ["sync_api", "sync_db", "sync_web", "sync_web2"]
    assert ids(select(SESSIONS, ["db"], "", False, default_all=True)) == ["sync_db"]


def test_sessions_without_labels_attribute():
    @dataclass
    class Bare:
        id: str
        name: str
        created: float

    bare = Bare("fwrd_x", "x", 1.0)
    assert select([bare], [], "!env", False) == [bare]
    assert select([bare], [], "env", False) == []
