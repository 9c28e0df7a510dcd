"""Pure core of watching: event interpretation, filtering, collapsing, state text."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX
from mutagen_actors.actors.sync.watch_events import (
    IN_ATTRIB,
    IN_CLOSE_WRITE,
    IN_CREATE,
    IN_DELETE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_ISDIR,
    IN_MODIFY,
    IN_MOVE_SELF,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    IN_Q_OVERFLOW,
    IN_UNMOUNT,
    Reaction,
    collapse,
    describe_state,
    interpret,
    reportable,
    watchable,
)

TMP = TEMPORARY_PREFIX + "abc"


@pytest.mark.parametrize(
    "mask, directory, name, expected",
    [
        # files
        (IN_CREATE, "", "f", Reaction(report="f")),
        (IN_CREATE, "a/b", "f", Reaction(report="a/b/f")),
        (IN_MODIFY, "a", "f", Reaction(report="a/f")),
        (IN_CLOSE_WRITE, "a", "f", Reaction(report="a/f")),
        (IN_ATTRIB, "a", "f", Reaction(report="a/f")),
        (IN_DELETE, "a", "f", Reaction(report="a/f")),
        (IN_MOVED_FROM, "a", "f", Reaction(report="a/f")),
        (IN_MOVED_TO, "", "g", Reaction(report="g")),
        # directories appearing get watches, leaving ones lose them
        (IN_CREATE | IN_ISDIR, "a", "d", Reaction(report="a/d", is_dir=True, watch_subtree=True)),
        (IN_MOVED_TO | IN_ISDIR, "", "d", Reaction(report="d", is_dir=True, watch_subtree=True)),
        (IN_DELETE | IN_ISDIR, "a", "d", Reaction(report="a/d", is_dir=True, unwatch_subtree=True)),
        (IN_MOVED_FROM | IN_ISDIR, "", "d", Reaction(report="d", is_dir=True, unwatch_subtree=True)),
        (IN_ATTRIB | IN_ISDIR, "", "d", Reaction(report="d", is_dir=True)),
        # events about the watched directory itself
        (IN_ATTRIB | IN_ISDIR, "a", "", Reaction(report="a", is_dir=True)),
        (IN_ATTRIB | IN_ISDIR, "", "", Reaction(report="", is_dir=True)),
        (IN_DELETE_SELF, "a", "", Reaction(watch_gone=True)),
        (IN_MOVE_SELF, "", "", Reaction(watch_gone=True)),
        (IN_IGNORED, "a", "", Reaction(watch_gone=True)),
        (IN_UNMOUNT, "", "", Reaction(watch_gone=True)),
        # lost events
        (IN_Q_OVERFLOW, None, "", Reaction(overflow=True)),
        # a late event for a watch we already dropped means nothing
        (IN_CREATE, None, "f", Reaction()),
        (IN_IGNORED, None, "", Reaction()),
    ],
)
def test_interpret(mask, directory, name, expected):
    assert interpret(mask, directory, name) == expected


class TableIgnorer:
    """A tiny ignorer with the project's Ignorer interface: fixed answers per path."""

    def __init__(self, ignored: set[str], reincluding: set[str] = frozenset()):
        self._ignored = ignored
        self._reincluding = reincluding

    def ignored(self, path: str, directory: bool) -> bool:
        assert path, "the ignorer is never asked about the root"
        return path in self._ignored

    def may_reinclude_below(self, path: str) -> bool:
        return path in self._reincluding


IGNORER = TableIgnorer({"node_modules", "a/build", "a/x.o"}, reincluding={"a/build"})


@pytest.mark.parametrize(
    "path, is_dir, ignorer, expected",
    [
        ("", True, IGNORER, True),
        ("src/main.py", False, None, True),
        ("src/main.py", False, IGNORER, True),
        ("node_modules", True, IGNORER, False),
        ("a/x.o", False, IGNORER, False),
        # docker syntax: an ignored directory that may re-include content is still followed
        ("a/build", True, IGNORER, True),
        (TMP, False, None, False),
        (f"a/{TMP}", True, None, False),
        (f"a/{TMP}x/y", False, None, True),  # only the last component is checked: parents were filtered
        (".mutagen-temporary", False, None, True),  # not the prefix
    ],
)
def test_reportable(path, is_dir, ignorer, expected):
    assert reportable(path, is_dir, ignorer) is expected


@pytest.mark.parametrize(
    "path, expected",
    [("src", True), ("node_modules", False), ("a/build", True), (TMP, False)],
)
def test_watchable(path, expected):
    assert watchable(path, IGNORER) is expected


@pytest.mark.parametrize(
    "paths, expected",
    [
        ([], set()),
        (["a"], {"a"}),
        (["a", "a/b", "a/b/c"], {"a"}),
        (["a/b/c", "a/b"], {"a/b"}),
        (["a-x", "a/b", "a"], {"a", "a-x"}),
        (["a/b", "a-x/c", "ab"], {"a/b", "a-x/c", "ab"}),
        (["", "a", "b/c"], {""}),
        (["x/y", "x/z", "x/y/1"], {"x/y", "x/z"}),
    ],
)
def test_collapse(paths, expected):
    assert collapse(paths) == frozenset(expected)


@pytest.mark.parametrize(
    "mechanism, kwargs, text",
    [
        ("tree", {}, "watching (inotify)"),
        ("force-poll", {"polling_interval": 10}, "polling every 10 s"),
        ("force-poll", {"polling_interval": 0.5}, "polling every 0.5 s"),
        (
            "fallback-poll",
            {"polling_interval": 10, "reason": "inotify watch limit reached: 8192 watches"},
            "polling every 10 s (inotify watch limit reached: 8192 watches)",
        ),
        ("no-watch", {}, "not watching"),
        ("awaiting-root", {"ancestor": "/srv"}, "watching for the root to be created (inotify on /srv)"),
        ("root-not-directory", {"ancestor": "/srv"},
         "watching the root's parent directory (inotify on /srv)"),
        ("stopped", {}, "not watching (stopped)"),
        ("not-started", {}, "not watching (not started)"),
    ],
)
def test_describe_state(mechanism, kwargs, text):
    assert describe_state(mechanism, **kwargs) == text
