"""Minimal change lists between two snapshot trees (pure, no I/O).

``diff(path, base, target)`` answers "which replacements turn ``base`` into ``target``?" with as
few changes as possible: it descends only while both sides are directories (or two entries that
are otherwise shallowly equal) and emits one whole-subtree replacement where they stop agreeing.

Contract:

- Each change is ``Change(p, old, new)`` where ``old`` is ``base``'s full subtree at ``p`` (or
  None) and ``new`` is ``target``'s full subtree at ``p`` (or None). Applying the list to ``base``
  with ``apply.apply_changes`` yields ``target``.
- An empty list means ``base == target`` (deep equality).
- The order is depth-first with child names sorted, so results are deterministic.
- Equal subtrees are skipped with a single ``==`` (a C-level deep comparison), so diffing two
  large trees that differ in a few places costs little more than comparing them.
"""

from __future__ import annotations

from typing import Optional

from .model import Change, Entry, join

__all__ = ["diff", "deletions_only", "non_deletions"]


def diff(path: str, base: Optional[Entry], target: Optional[Entry]) -> list[Change]:
    """The minimal list of changes that turns ``base`` into ``target``, rooted at ``path``."""
    changes: list[Change] = []
    _diff(path, base, target, changes)
    return changes


def _diff(path: str, base: Optional[Entry], target: Optional[Entry], out: list[Change]) -> None:
    if base == target:
        return
    if base is None or target is None or not base.shallow_equal(target):
        out.append(Change(path, base, target))
        return
    base_contents = base.contents
    target_contents = target.contents
    for name in sorted(base_contents.keys() | target_contents.keys()):
        _diff(join(path, name), base_contents.get(name), target_contents.get(name), out)


def non_deletions(changes: list[Change]) -> list[Change]:
    """The changes that create or modify something (``new`` is not None), order kept."""
    return [change for change in changes if change.new is not None]


def deletions_only(changes: list[Change]) -> bool:
    """True when every change removes its path (an empty list counts as deletions only)."""
    return all(change.new is None for change in changes)
