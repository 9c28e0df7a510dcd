"""Pure core of filesystem watching: what an inotify event means for the next scan.

Nothing here touches the filesystem or the kernel. ``watching.py`` (the shell) reads raw
events and asks this module:

* :func:`interpret` -- given one event's mask, the root-relative directory its watch
  covers and the entry name, which root-relative path is dirty, whether a watch must be
  added below it (a directory appeared) or dropped below it (a directory went away), and
  whether the root itself is gone;
* :func:`reportable` / :func:`watchable` -- whether a path may be reported / watched at
  all (never the tool's own temporary names, never what the ignorer excludes);
* :func:`collapse` -- the smallest set of dirty paths covering the same subtrees
  (a dirty directory is rescanned as a whole by the scanner, so its descendants are
  redundant);
* :func:`describe_state` -- the human text the session shows for the watcher.

Paths are root-relative, ``/``-separated, ``""`` for the root itself.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, NamedTuple, Protocol

from .settings import TEMPORARY_PREFIX

# inotify(7) event bits (values from <sys/inotify.h>; stable kernel ABI).
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000

#: Events requested on every watched directory of the tree. Deliberately absent:
#: IN_ACCESS, IN_OPEN, IN_CLOSE_NOWRITE -- reads (including our own directory walk)
#: must not generate events, or a big tree floods the queue (see docs/libraries.md).
TREE_MASK = (
    IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVED_FROM
    | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
)
#: Events requested on the nearest existing ancestor while the root is absent or is not
#: a directory (events are then filtered by the name of the path component toward the root).
#: Symbolic links among the root's ancestors are the user's business: they are followed.
ANCESTOR_MASK = TREE_MASK & ~IN_DONT_FOLLOW

_CHANGE = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO
_SELF_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_IGNORED


@dataclasses.dataclass(frozen=True)
class WatchBatch:
    """Dirty root-relative paths for the next incremental scan.

    ``paths``: each path (file, directory, symlink, or a name that no longer exists) whose
    state may differ from the last scan; a path that is a directory now must be rescanned
    as a subtree. ``""`` is the root itself. Never contains temporary names.
    ``rescan_all``: events may have been lost (queue overflow, watches re-established, a
    poll tick, the root appeared or went away): the endpoint must scan everything and
    compare snapshots; ``paths`` is then empty.
    """

    paths: frozenset[str]
    rescan_all: bool


class Reaction(NamedTuple):
    """What one event asks of the shell. ``report`` is a root-relative path or None."""

    report: str | None = None
    is_dir: bool = False
    watch_subtree: bool = False     # a directory appeared at ``report``: add watches below it
    unwatch_subtree: bool = False   # a directory left ``report``: drop watches below it
    watch_gone: bool = False        # this watch's own directory is gone (self event / IGNORED)
    overflow: bool = False          # events were lost: rescan everything


class IgnorerLike(Protocol):
    def ignored(self, path: str, directory: bool) -> bool: ...


def join(directory: str, name: str) -> str:
    """Root-relative path of ``name`` inside root-relative ``directory``."""
    return f"{directory}/{name}" if directory else name


def parent(path: str) -> str:
    """Root-relative parent of a non-root path (``"a/b"`` -> ``"a"``, ``"a"`` -> ``""``)."""
    return path.rpartition("/")[0]


def is_temporary(name: str) -> bool:
    """True for the tool's own staging/temporary names (never reported, never watched)."""
    return name.startswith(TEMPORARY_PREFIX)


def interpret(mask: int, directory: str | None, name: str) -> Reaction:
    """Meaning of one inotify event.

    ``directory`` is the root-relative directory of the watch that produced it (None when
    the watch descriptor is unknown, e.g. a late event for a watch already dropped).
    ``name`` is the entry name for events about a child, ``""`` for events about the
    watched directory itself.
    """
    if mask & IN_Q_OVERFLOW:
        return Reaction(overflow=True)
    if directory is None:
        return Reaction()
    is_dir = bool(mask & IN_ISDIR)
    if not name:
        if mask & _SELF_GONE:
            return Reaction(watch_gone=True)
        if mask & IN_ATTRIB:  # the watched directory's own metadata changed
            return Reaction(report=directory, is_dir=True)
        return Reaction()
    if not mask & _CHANGE:
        return Reaction()
    path = join(directory, name)
    appeared = bool(mask & (IN_CREATE | IN_MOVED_TO))
    left = bool(mask & (IN_DELETE | IN_MOVED_FROM))
    return Reaction(
        report=path,
        is_dir=is_dir,
        watch_subtree=is_dir and appeared,
        unwatch_subtree=is_dir and left,
    )


def reportable(path: str, is_dir: bool, ignorer: IgnorerLike | None) -> bool:
    """May ``path`` (non-root, its parent watched) be reported dirty?

    Temporary names never; ignored paths only if they are directories the ignorer may
    re-include content below (docker syntax phantoms).
    """
    if not path:
        return True
    if is_temporary(path.rpartition("/")[2]):
        return False
    if ignorer is None or not ignorer.ignored(path, is_dir):
        return True
    return is_dir and _may_reinclude_below(ignorer, path)


def watchable(path: str, ignorer: IgnorerLike | None) -> bool:
    """May the directory at ``path`` be watched (same rule as :func:`reportable`)."""
    return reportable(path, True, ignorer)


def _may_reinclude_below(ignorer: IgnorerLike, path: str) -> bool:
    probe = getattr(ignorer, "may_reinclude_below", None)
    return bool(probe(path)) if probe is not None else False


def collapse(paths: Iterable[str]) -> frozenset[str]:
    """Drop every path that has an ancestor (or ``""``) in the set."""
    unique = set(paths)
    if "" in unique:
        return frozenset({""})
    return frozenset(p for p in unique if not any(a in unique for a in _ancestors(p)))


def _ancestors(path: str) -> Iterable[str]:
    while "/" in path:
        path = path.rpartition("/")[0]
        yield path


def format_interval(seconds: float) -> str:
    return f"{seconds:g}"


def describe_state(
    mechanism: str,
    *,
    polling_interval: float = 10,
    reason: str | None = None,
    ancestor: str | None = None,
) -> str:
    """Human text for the session state.

    ``mechanism``: "not-started", "stopped", "no-watch", "force-poll", "fallback-poll",
    "tree", "awaiting-root", "root-not-directory".
    """
    interval = format_interval(polling_interval)
    if mechanism == "tree":
        return "watching (inotify)"
    if mechanism == "awaiting-root":
        return f"watching for the root to be created (inotify on {ancestor})"
    if mechanism == "root-not-directory":
        return f"watching the root's parent directory (inotify on {ancestor})"
    if mechanism == "force-poll":
        return f"polling every {interval} s"
    if mechanism == "fallback-poll":
        return f"polling every {interval} s ({reason})"
    if mechanism == "no-watch":
        return "not watching"
    if mechanism == "stopped":
        return "not watching (stopped)"
    return "not watching (not started)"
