"""The three-way reconcile: ancestor, alpha and beta in, per-side changes and conflicts out.

Pure and stateless: ``reconcile(ancestor, alpha, beta, mode)`` does no I/O. The semantics are
those of the behaviour reference, section 3 (with the ignore consequences of section 4 and the
conflict shape of section 6). At each path, parents before children:

1. Either side problematic at the path: skip it (no change, no conflict, ancestor untouched).
2. Both sides absent or untracked: clear the ancestor at the path.
3. The sides agree shallowly (same kind; same digest and executable bit for files, same target
   for symlinks; any two directories): set the ancestor to that value if it differs, recurse.
4. Otherwise the mode decides (see the ``_two_way``, ``_one_way_safe`` and ``_one_way_replica``
   docstrings).

Output contract (``Reconciliation``):

- ``alpha_changes`` / ``beta_changes``: ``Change(path, old, new)`` where ``old`` is exactly that
  side's scanned entry at ``path`` (its full subtree, untracked content included, so a
  transition can verify everything it removes) and ``new`` is synchronizable content only (no
  untracked or problematic entries). Changes of one side never nest inside each other. Alpha
  changes are always empty in the one-way modes.
- ``ancestor_changes``: ``Change(path, None, new)`` to apply to the ancestor *before* the
  results of the side transitions; ``new`` is shallow (a directory without contents: its
  children come as their own changes) or None to clear the path.
- ``conflicts``: sorted by root path; their changes are "slim" (``Entry.shallow()``), meant for
  display. A conflicted subtree gets no change of any kind; everything else proceeds.
- Lists other than ``conflicts`` are in depth-first order with child names sorted.

Inputs: the ancestor must be valid (``apply.validate_ancestor``: no untracked, problematic or
phantom entries). Phantom directories should be reified before reconcile; any that remain are
treated like untracked content (never propagated, never deleted).

Speed: a subtree where ancestor, alpha and beta are deep-equal is skipped with two C-level
``==`` comparisons, so an unchanged tree of any size costs one comparison of the roots.
Recursion goes one Python frame per directory level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .diff import diff, non_deletions
from .model import Change, Conflict, Entry, Kind, join
from .settings import Mode

__all__ = ["Reconciliation", "reconcile", "synchronizable", "is_synchronizable"]

_UNSYNCHRONIZABLE = frozenset({Kind.UNTRACKED, Kind.PROBLEMATIC, Kind.PHANTOM})
_NIL_LIKE = frozenset({Kind.UNTRACKED, Kind.PHANTOM})


@dataclass(frozen=True)
class Reconciliation:
    """What one reconcile decided. See the module docstring for the contract of each list."""

    ancestor_changes: list[Change] = field(default_factory=list)
    alpha_changes: list[Change] = field(default_factory=list)
    beta_changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when nothing is to be done and nothing conflicts."""
        return not (self.ancestor_changes or self.alpha_changes or self.beta_changes or self.conflicts)


def synchronizable(entry: Optional[Entry]) -> Optional[Entry]:
    """``entry`` with untracked, problematic and phantom entries removed (None if it is one).

    Returns the very same object when there is nothing to remove, so the common case allocates
    nothing.
    """
    if entry is None or entry.kind in _UNSYNCHRONIZABLE:
        return None
    if not entry.contents:
        return entry
    kept: dict[str, Entry] = {}
    changed = False
    for name, child in entry.contents.items():
        filtered = synchronizable(child)
        if filtered is not child:
            changed = True
        if filtered is not None:
            kept[name] = filtered
    if not changed:
        return entry
    return Entry(entry.kind, kept)


def is_synchronizable(entry: Optional[Entry]) -> bool:
    """True when ``entry`` (and every descendant) is absent, a directory, a file or a symlink."""
    return synchronizable(entry) is entry


def _slim(change: Change) -> Change:
    old = change.old.shallow() if change.old is not None else None
    new = change.new.shallow() if change.new is not None else None
    if old is change.old and new is change.new:
        return change
    return Change(change.path, old, new)


def _nil_or_untracked(entry: Optional[Entry]) -> bool:
    return entry is None or entry.kind in _NIL_LIKE


class _Reconciler:
    __slots__ = ("mode", "ancestor_changes", "alpha_changes", "beta_changes", "conflicts")

    def __init__(self, mode: Mode) -> None:
        self.mode = Mode(mode)
        self.ancestor_changes: list[Change] = []
        self.alpha_changes: list[Change] = []
        self.beta_changes: list[Change] = []
        self.conflicts: list[Conflict] = []

    def conflict(self, path: str, alpha_changes: list[Change], beta_changes: list[Change]) -> None:
        self.conflicts.append(
            Conflict(path, [_slim(c) for c in alpha_changes], [_slim(c) for c in beta_changes])
        )

    def reconcile(
        self, path: str, ancestor: Optional[Entry], alpha: Optional[Entry], beta: Optional[Entry]
    ) -> None:
        # Unchanged subtree (the ancestor holds no unsynchronizable content, so neither do the
        # sides): nothing to do at any depth.
        if alpha == ancestor and beta == ancestor:
            return

        # 1. A problematic side: the scan already reported it; do nothing here at all.
        if (alpha is not None and alpha.kind == Kind.PROBLEMATIC) or (
            beta is not None and beta.kind == Kind.PROBLEMATIC
        ):
            return

        # 2. Nothing to track on either side: forget the path.
        if _nil_or_untracked(alpha) and _nil_or_untracked(beta):
            if ancestor is not None:
                self.ancestor_changes.append(Change(path, None, None))
            return

        # 3. Shallow agreement (neither is None here: one None would mean the other is
        #    synchronizable, which cannot be shallowly equal to None).
        if alpha is not None and alpha.shallow_equal(beta):
            assert beta is not None
            ancestor_contents = ancestor.contents if ancestor is not None else {}
            if ancestor is None or not ancestor.shallow_equal(alpha):
                self.ancestor_changes.append(Change(path, None, alpha.shallow()))
                ancestor_contents = {}
            alpha_contents = alpha.contents
            beta_contents = beta.contents
            if ancestor_contents or alpha_contents or beta_contents:
                names = ancestor_contents.keys() | alpha_contents.keys() | beta_contents.keys()
                for name in sorted(names):
                    self.reconcile(
                        join(path, name),
                        ancestor_contents.get(name),
                        alpha_contents.get(name),
                        beta_contents.get(name),
                    )
            return

        # 4. Disagreement.
        if self.mode in (Mode.TWO_WAY_SAFE, Mode.TWO_WAY_RESOLVED):
            self._two_way(path, ancestor, alpha, beta)
        elif self.mode == Mode.ONE_WAY_SAFE:
            self._one_way_safe(path, ancestor, alpha, beta)
        else:
            self._one_way_replica(path, ancestor, alpha, beta)

    def _two_way(
        self, path: str, ancestor: Optional[Entry], alpha: Optional[Entry], beta: Optional[Entry]
    ) -> None:
        """two-way-safe and two-way-resolved.

        With α', β' the synchronizable parts: an unmodified side (empty diff against the
        ancestor) receives the other side; when both sides only deleted, the complete deletion
        wins; when exactly one side only deleted, the other side's whole content is propagated
        over it; when both created or modified, two-way-safe reports a conflict of the
        non-deletion changes and two-way-resolved makes alpha win. Any overwrite or removal that
        would destroy untracked or problematic content of the receiving side becomes a conflict
        instead (that side's changes list the content in the way).
        """
        alpha_sync = synchronizable(alpha)
        beta_sync = synchronizable(beta)
        alpha_diff = diff(path, ancestor, alpha_sync)
        beta_diff = diff(path, ancestor, beta_sync)

        if not beta_diff:
            self._overwrite_beta(path, alpha_diff, beta, beta_sync, alpha_sync)
            return
        if not alpha_diff:
            self._overwrite_alpha(path, beta_diff, alpha, alpha_sync, beta_sync)
            return

        alpha_creations = non_deletions(alpha_diff)
        beta_creations = non_deletions(beta_diff)
        if not alpha_creations and not beta_creations:
            # One side removed the whole directory, the other part of it: finish the removal.
            if alpha_sync is None:
                self._overwrite_beta(path, alpha_diff, beta, beta_sync, None)
            else:
                self._overwrite_alpha(path, beta_diff, alpha, alpha_sync, None)
            return
        if not beta_creations:
            self._overwrite_beta(path, alpha_creations, beta, beta_sync, alpha_sync)
            return
        if not alpha_creations:
            self._overwrite_alpha(path, beta_creations, alpha, alpha_sync, beta_sync)
            return

        if self.mode == Mode.TWO_WAY_SAFE:
            self.conflict(path, alpha_creations, beta_creations)
        else:
            self._overwrite_beta(path, alpha_creations, beta, beta_sync, alpha_sync)

    def _overwrite_beta(
        self,
        path: str,
        alpha_reason: list[Change],
        beta: Optional[Entry],
        beta_sync: Optional[Entry],
        new: Optional[Entry],
    ) -> None:
        in_the_way = diff(path, beta_sync, beta)
        if in_the_way:
            self.conflict(path, alpha_reason, in_the_way)
        else:
            self.beta_changes.append(Change(path, beta, new))

    def _overwrite_alpha(
        self,
        path: str,
        beta_reason: list[Change],
        alpha: Optional[Entry],
        alpha_sync: Optional[Entry],
        new: Optional[Entry],
    ) -> None:
        in_the_way = diff(path, alpha_sync, alpha)
        if in_the_way:
            self.conflict(path, in_the_way, beta_reason)
        else:
            self.alpha_changes.append(Change(path, alpha, new))

    def _one_way_safe(
        self, path: str, ancestor: Optional[Entry], alpha: Optional[Entry], beta: Optional[Entry]
    ) -> None:
        """one-way-safe: alpha is the source, beta may keep its own creations.

        If beta's synchronizable part only deleted (or did nothing), beta is overwritten with
        alpha's synchronizable content. Otherwise, if alpha has nothing here (absent or
        untracked) and the ancestor and beta are not both directories, beta's content stays
        and the ancestor is cleared. Anything else is a conflict whose alpha side is the
        synthetic change ancestor -> alpha.
        """
        beta_sync = synchronizable(beta)
        beta_creations = non_deletions(diff(path, ancestor, beta_sync))
        synthetic = [Change(path, ancestor, alpha)]
        if not beta_creations:
            self._overwrite_beta(path, synthetic, beta, beta_sync, synchronizable(alpha))
            return
        both_directories = (
            ancestor is not None
            and ancestor.kind == Kind.DIRECTORY
            and beta is not None
            and beta.kind == Kind.DIRECTORY
        )
        if _nil_or_untracked(alpha) and not both_directories:
            if ancestor is not None:
                self.ancestor_changes.append(Change(path, None, None))
            return
        self.conflict(path, synthetic, beta_creations)

    def _one_way_replica(
        self, path: str, ancestor: Optional[Entry], alpha: Optional[Entry], beta: Optional[Entry]
    ) -> None:
        """one-way-replica: beta becomes alpha's synchronizable content, unless beta holds
        untracked or problematic content that would have to go (then: conflict, with the
        synthetic alpha change ancestor -> alpha)."""
        self._overwrite_beta(
            path, [Change(path, ancestor, alpha)], beta, synchronizable(beta), synchronizable(alpha)
        )


def reconcile(
    ancestor: Optional[Entry], alpha: Optional[Entry], beta: Optional[Entry], mode: Mode
) -> Reconciliation:
    """Three-way merge of the snapshots in ``mode``; see the module docstring for the contract."""
    reconciler = _Reconciler(mode)
    reconciler.reconcile("", ancestor, alpha, beta)
    conflicts = sorted(reconciler.conflicts, key=lambda conflict: conflict.root)
    return Reconciliation(
        reconciler.ancestor_changes, reconciler.alpha_changes, reconciler.beta_changes, conflicts
    )
