"""Phantom-directory reification (docker ignore syntax only; reference §4; pure).

With docker syntax a negation can re-include content below an ignored directory, so the scanner
traverses such directories and records them as ``Kind.PHANTOM`` with whatever it found inside.
Before reconciliation each phantom must become either a real directory or untracked content,
looking at both sides and the ancestor together:

A phantom directory becomes a **tracked directory** when
  - the ancestor has a (tracked) directory at that path, or
  - the other side has a real directory there, or
  - either side's subtree below that path holds tracked content after reification: a file, a
    symlink, a problematic entry or a (real or reified) directory.
Otherwise it becomes **untracked** (and its contents are dropped).

Real directories are never changed themselves, but their contents are reified. Inputs are not
modified; unchanged subtrees are returned as the same objects, so a snapshot without phantoms
costs one walk and no copying.

(Mutagen's implementation does not look at the other side's real directory at the same level:
with identical ignore patterns on both sides the two sides cannot disagree there. The reference
names the rule, and keeping the directory is the side that cannot lose data, so it is applied.)
"""

from __future__ import annotations

from typing import Optional

from .model import UNTRACKED, Entry, Kind

_DIRECTORY_KINDS = (Kind.DIRECTORY, Kind.PHANTOM)
_EMPTY: dict[str, Entry] = {}


def _contents(entry: Optional[Entry]) -> dict[str, Entry]:
    if entry is None or entry.kind not in _DIRECTORY_KINDS:
        return _EMPTY
    return entry.contents


def _reify(
    ancestor: Optional[Entry], alpha: Optional[Entry], beta: Optional[Entry]
) -> tuple[Optional[Entry], Optional[Entry], bool]:
    """Reified alpha and beta, and whether tracked content exists at or below this path."""
    alpha_directory = alpha is not None and alpha.kind in _DIRECTORY_KINDS
    beta_directory = beta is not None and beta.kind in _DIRECTORY_KINDS
    if not alpha_directory and not beta_directory:
        tracked = (alpha is not None and alpha.kind != Kind.UNTRACKED) or (
            beta is not None and beta.kind != Kind.UNTRACKED
        )
        return alpha, beta, tracked

    ancestor_contents = _contents(ancestor)
    alpha_contents = _contents(alpha)
    beta_contents = _contents(beta)
    new_alpha: dict[str, Entry] = {}
    new_beta: dict[str, Entry] = {}
    alpha_changed = beta_changed = False
    tracked_below = False
    for name in alpha_contents.keys() | beta_contents.keys():
        old_a = alpha_contents.get(name)
        old_b = beta_contents.get(name)
        a, b, tracked = _reify(ancestor_contents.get(name), old_a, old_b)
        tracked_below = tracked_below or tracked
        if a is not None:
            new_alpha[name] = a
        if b is not None:
            new_beta[name] = b
        alpha_changed = alpha_changed or a is not old_a
        beta_changed = beta_changed or b is not old_b

    to_tracked = (
        tracked_below
        or (ancestor is not None and ancestor.kind == Kind.DIRECTORY)
        or (alpha is not None and alpha.kind == Kind.DIRECTORY)
        or (beta is not None and beta.kind == Kind.DIRECTORY)
    )

    def settle(entry: Optional[Entry], contents: dict[str, Entry], changed: bool) -> Optional[Entry]:
        if entry is None or entry.kind not in _DIRECTORY_KINDS:
            return entry
        if entry.kind == Kind.PHANTOM:
            return Entry.directory(contents) if to_tracked else UNTRACKED
        return Entry.directory(contents) if changed else entry

    alpha = settle(alpha, new_alpha, alpha_changed)
    beta = settle(beta, new_beta, beta_changed)
    tracked = (alpha is not None and alpha.kind == Kind.DIRECTORY) or (beta is not None and beta.kind == Kind.DIRECTORY)
    return alpha, beta, tracked


def reify(
    ancestor: Optional[Entry], alpha: Optional[Entry], beta: Optional[Entry]
) -> tuple[Optional[Entry], Optional[Entry]]:
    """Alpha and beta snapshots with every phantom directory made tracked or untracked."""
    alpha, beta, _ = _reify(ancestor, alpha, beta)
    return alpha, beta


def has_phantoms(entry: Optional[Entry]) -> bool:
    """True if ``entry`` or anything below it is a phantom directory."""
    stack = [entry] if entry is not None else []
    while stack:
        current = stack.pop()
        if current.kind == Kind.PHANTOM:
            return True
        if current.contents:
            stack.extend(current.contents.values())
    return False
