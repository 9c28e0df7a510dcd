"""Applying change lists to snapshot trees, and validating the ancestor (pure, no I/O).

``apply_changes(root, changes)`` sets ``change.new`` at ``change.path`` for each change in order
(``old`` is ignored) and returns the new tree; the input tree is never modified (entries are
immutable). This is how the ancestor is brought forward after a cycle: first the reconciler's
``ancestor_changes``, then one ``Change(path, None, result)`` per side change with what the
transition reports as actually existing afterwards.

Failure rules: ``apply_changes`` raises ``ValueError`` if a change's parent path does not exist or
is not a directory at the time the change is applied (the change list does not fit the tree).
``validate_ancestor`` raises ``ValueError`` naming the first offending path if the tree holds
anything an ancestor must not hold.

Cost: each directory on the path of a change is copied once per call (not once per change), so
applying many changes below one large directory stays linear.
"""

from __future__ import annotations

from typing import Optional, Union

from .model import Change, Entry, Kind, join

__all__ = ["apply_changes", "validate_ancestor"]


class _Directory:
    """A directory being edited: the original entry's kind plus a mutable copy of its contents."""

    __slots__ = ("kind", "contents")

    def __init__(self, entry: Entry) -> None:
        self.kind = entry.kind
        self.contents: dict[str, Union[Entry, _Directory]] = dict(entry.contents)

    def freeze(self) -> Entry:
        return Entry(
            self.kind,
            {
                name: child.freeze() if isinstance(child, _Directory) else child
                for name, child in self.contents.items()
            },
        )


_Node = Union[Entry, _Directory, None]


def _editable(node: _Node, path: str) -> _Directory:
    if isinstance(node, _Directory):
        return node
    if node is None or node.kind not in (Kind.DIRECTORY, Kind.PHANTOM):
        raise ValueError(f"unable to resolve parent path for {path!r}: parent is not a directory")
    return _Directory(node)


def apply_changes(root: Optional[Entry], changes: list[Change]) -> Optional[Entry]:
    """``root`` with ``change.new`` set at each ``change.path``, in order (see module docstring)."""
    if not changes:
        return root
    result: _Node = root
    for change in changes:
        if change.path == "":
            result = change.new
            continue
        names = change.path.split("/")
        result = _editable(result, change.path)
        parent = result
        for name in names[:-1]:
            child = parent.contents.get(name)
            if child is None:
                raise ValueError(f"unable to resolve parent path for {change.path!r}")
            child = _editable(child, change.path)
            parent.contents[name] = child
            parent = child
        if change.new is None:
            parent.contents.pop(names[-1], None)
        else:
            parent.contents[names[-1]] = change.new
    return result.freeze() if isinstance(result, _Directory) else result


def validate_ancestor(root: Optional[Entry], known_valid: Optional[Entry] = None) -> None:
    """Raise ``ValueError`` unless ``root`` is a valid ancestor.

    A valid ancestor holds only directories, files and symlinks: no untracked, problematic or
    phantom entries; child names are non-empty, not ``.`` or ``..``, and contain no ``/`` or NUL;
    only directories have contents; files carry a digest; symlinks carry a target.

    ``known_valid`` (optional) is a tree already validated, typically the previous ancestor:
    any subtree of ``root`` that is the very same object as the subtree at the same path of
    ``known_valid`` is not walked again. ``apply_changes`` shares every untouched subtree with its
    input, so validating the next ancestor costs time proportional to what changed.
    """
    if root is None or root is known_valid:
        return
    stack: list[tuple[str, Entry, Optional[Entry]]] = [("", root, known_valid)]
    while stack:
        path, entry, previous = stack.pop()
        where = repr(path) if path else "the root"
        kind = entry.kind
        if kind == Kind.DIRECTORY:
            previous_contents = (
                previous.contents if previous is not None and previous.kind == Kind.DIRECTORY else {}
            )
            for name, child in entry.contents.items():
                if not name or name in (".", "..") or "/" in name or "\x00" in name:
                    raise ValueError(f"invalid ancestor: bad entry name {name!r} in {where}")
                before = previous_contents.get(name)
                if child is not before:
                    stack.append((join(path, name), child, before))
            continue
        if kind == Kind.UNTRACKED:
            raise ValueError(f"invalid ancestor: untracked entry at {where}")
        if kind == Kind.PROBLEMATIC:
            raise ValueError(f"invalid ancestor: problematic entry at {where}")
        if kind == Kind.PHANTOM:
            raise ValueError(f"invalid ancestor: phantom directory at {where}")
        if entry.contents:
            raise ValueError(f"invalid ancestor: non-directory with contents at {where}")
        if kind == Kind.FILE and not entry.digest:
            raise ValueError(f"invalid ancestor: file without digest at {where}")
        if kind == Kind.SYMLINK and not entry.target:
            raise ValueError(f"invalid ancestor: symbolic link without target at {where}")
        if kind not in (Kind.FILE, Kind.SYMLINK):
            raise ValueError(f"invalid ancestor: unknown entry kind {kind!r} at {where}")
