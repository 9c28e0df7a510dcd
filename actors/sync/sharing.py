"""Structural sharing between snapshots: equal subtrees become the same objects.

A full scan builds a whole new tree even when little changed; an endpoint that keeps its
previous snapshot (for deltas) and a reconciler that keeps the ancestor and both sides would
then hold several copies of the same 100k entries. ``share(new, old)`` returns a tree equal to
``new`` in which every subtree equal to the corresponding subtree of ``old`` *is* that subtree
of ``old``; the copies in ``new`` become garbage.

Contract:
- the result is ``==`` to ``new`` (entries are values; only which objects hold them changes);
- when ``new == old`` the result is ``old`` itself;
- directory contents of ``new`` may be updated in place (a child replaced by an equal one from
  ``old``): call it on a tree that was just built (a scan result, a decoded message), never on
  one whose dicts someone iterates concurrently;
- cost: one C-level equality test per directory level along changed paths, plus a walk of the
  changed directories' children; nothing is allocated.
"""

from __future__ import annotations

from typing import Optional

from .model import Entry, Kind

_CONTAINERS = (Kind.DIRECTORY, Kind.PHANTOM)


def share(new: Optional[Entry], old: Optional[Entry]) -> Optional[Entry]:
    """``new`` with its subtrees equal to ``old``'s replaced by ``old``'s objects."""
    if new is None or old is None or new is old:
        return new
    if new == old:
        return old
    stack = [(new, old)]
    while stack:
        fresh, previous = stack.pop()
        if fresh.kind not in _CONTAINERS or previous.kind not in _CONTAINERS:
            continue
        contents, old_contents = fresh.contents, previous.contents
        if not contents or not old_contents:
            continue
        for name, child in contents.items():
            old_child = old_contents.get(name)
            if old_child is None or old_child is child:
                continue
            if child == old_child:
                contents[name] = old_child  # same key: allowed while iterating
            elif child.contents and old_child.contents:
                stack.append((child, old_child))
    return new
