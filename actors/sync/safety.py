"""Safety halts: the checks that stop a session instead of propagating a wipe (pure, no I/O).

Behaviour reference section 7. Two moments:

- ``check_root_emptied(ancestor, alpha, beta)`` runs after scanning, before reconciling: halt when
  the ancestor root is a directory with at least two entries and exactly one side's root is
  now an empty directory (the other side may be anything else, including absent).
- ``check_root_changes(reconciliation)`` runs after reconciling, before staging or transition:
  halt when a side change would delete the root (``old`` present, ``new`` None) or change its
  kind (dir <-> file <-> symlink).

Each returns a ``HaltReason`` (its value is the JSON status, ``description`` the text ``list``
shows) or None. Resuming re-runs the checks, so a halt persists until the user fixes the cause.

Deliberate difference from Mutagen (which counts every child of the root, ignored ones included):
a side root counts as *empty* when it holds no synchronizable content, meaning every remaining
child is untracked (ignored or an unsupported type), problematic, or a phantom directory with no
tracked descendant. So ``rm -rf *`` that leaves only an ignored ``.git`` or ``node_modules``
behind still halts instead of deleting everything on the other side. The ancestor never holds
unsynchronizable content, so counting its children is unchanged.
"""

from __future__ import annotations

import enum
from typing import Optional

from .model import Entry, Kind
from .reconcile import Reconciliation

__all__ = ["HaltReason", "check_root_emptied", "check_root_changes"]


class HaltReason(str, enum.Enum):
    ROOT_EMPTIED = "halted-on-root-emptied"
    ROOT_DELETION = "halted-on-root-deletion"
    ROOT_TYPE_CHANGE = "halted-on-root-type-change"

    @property
    def description(self) -> str:
        """The status text users see in ``list``."""
        return _DESCRIPTIONS[self]

    def __str__(self) -> str:
        return self.value


_DESCRIPTIONS = {
    HaltReason.ROOT_EMPTIED: "Halted due to one-sided root emptying",
    HaltReason.ROOT_DELETION: "Halted due to root deletion",
    HaltReason.ROOT_TYPE_CHANGE: "Halted due to root type change",
}

_TRACKED = (Kind.DIRECTORY, Kind.FILE, Kind.SYMLINK)


def _has_tracked(entry: Entry) -> bool:
    if entry.kind in _TRACKED:
        return True
    if entry.kind == Kind.PHANTOM:
        return any(_has_tracked(child) for child in entry.contents.values())
    return False


def _emptied(side: Optional[Entry]) -> bool:
    return (
        side is not None
        and side.kind == Kind.DIRECTORY
        and not any(_has_tracked(child) for child in side.contents.values())
    )


def check_root_emptied(
    ancestor: Optional[Entry], alpha: Optional[Entry], beta: Optional[Entry]
) -> Optional[HaltReason]:
    """``ROOT_EMPTIED`` if exactly one side emptied a root that had >= 2 entries, else None."""
    if ancestor is None or ancestor.kind != Kind.DIRECTORY or len(ancestor.contents) < 2:
        return None
    alpha_emptied = _emptied(alpha)
    beta_emptied = _emptied(beta)
    if alpha_emptied != beta_emptied:
        return HaltReason.ROOT_EMPTIED
    return None


def check_root_changes(reconciliation: Reconciliation) -> Optional[HaltReason]:
    """``ROOT_DELETION`` or ``ROOT_TYPE_CHANGE`` if a side change would do that to the root.

    Deletion is checked on both sides before type changes.
    """
    root_changes = [
        change
        for change in (*reconciliation.alpha_changes, *reconciliation.beta_changes)
        if change.path == ""
    ]
    for change in root_changes:
        if change.old is not None and change.new is None:
            return HaltReason.ROOT_DELETION
    for change in root_changes:
        if change.old is not None and change.new is not None and change.old.kind != change.new.kind:
            return HaltReason.ROOT_TYPE_CHANGE
    return None
