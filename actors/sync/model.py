"""The synchronization data model: entries, snapshots, changes, conflicts and problems.

A snapshot is a tree of ``Entry`` values, the root entry standing for the synchronization root
itself (``None`` when the root does not exist). Paths are relative to the root, use ``/`` as the
separator and the root's own path is the empty string.

Entries are immutable msgspec structs: equality (``==``) compares whole subtrees in C, which is
what lets reconciliation skip unchanged subtrees of a 100k-entry tree cheaply, and they encode
compactly as positional msgpack arrays when they cross the wire.
"""

from __future__ import annotations

import enum
from typing import Optional

import msgspec
from msgspec.structs import force_setattr


class Kind(enum.IntEnum):
    DIRECTORY = 0
    FILE = 1
    SYMLINK = 2
    UNTRACKED = 3  # ignored content, or a type we do not synchronize (socket, FIFO, device)
    PROBLEMATIC = 4  # could not be read or represented; carries ``problem``
    PHANTOM = 5  # docker ignore syntax: an ignored directory that may hold un-ignored content


KIND_NAMES = {
    Kind.DIRECTORY: "directory",
    Kind.FILE: "file",
    Kind.SYMLINK: "symlink",
    Kind.UNTRACKED: "untracked",
    Kind.PROBLEMATIC: "problematic",
    Kind.PHANTOM: "phantom-directory",
}


class _NoContents(dict):
    """The ``contents`` of every entry that is not a directory: one shared empty mapping.

    Memory: a file entry used to carry an empty dict of its own (64 bytes, as much as the entry
    itself), ~6 MB per 100k-file snapshot in every process holding one. It compares, encodes
    and reads like ``{}``; mutating it raises ``TypeError`` (it is shared by every such entry).
    """

    __slots__ = ()

    def _immutable(self, *args, **kwargs):
        raise TypeError("the contents of an entry that is not a directory cannot change")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _immutable

    def __reduce__(self):
        return (_no_contents, ())


def _no_contents() -> "_NoContents":
    return NO_CONTENTS


NO_CONTENTS = _NoContents()


class Entry(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One node of a snapshot.

    - directory: ``contents`` maps child names to entries;
    - file: ``digest`` (raw bytes of the session's hash) and ``executable``;
    - symlink: ``target``;
    - untracked: nothing else;
    - problematic: ``problem`` (the text shown to the user).
    """

    kind: Kind
    contents: dict[str, Entry] = NO_CONTENTS  # unquoted: msgspec on Python 3.10 needs it so
    digest: bytes = b""
    executable: bool = False
    target: str = ""
    problem: str = ""

    def __post_init__(self) -> None:
        # Directories own a dict (a fresh one when built without contents); every other entry
        # shares NO_CONTENTS, also when decoded (the decoder builds an empty dict for each).
        contents = self.contents
        if self.kind in _CONTAINER_KINDS:
            if contents is NO_CONTENTS:
                force_setattr(self, "contents", {})
        elif not contents and contents is not NO_CONTENTS:
            force_setattr(self, "contents", NO_CONTENTS)

    # Convenience constructors: read better in tests and in the core.
    @staticmethod
    def directory(contents: Optional[dict[str, "Entry"]] = None) -> "Entry":
        return Entry(Kind.DIRECTORY, contents or {})

    @staticmethod
    def file(digest: bytes, executable: bool = False) -> "Entry":
        return Entry(Kind.FILE, digest=digest, executable=executable)

    @staticmethod
    def symlink(target: str) -> "Entry":
        return Entry(Kind.SYMLINK, target=target)

    @staticmethod
    def untracked() -> "Entry":
        return UNTRACKED

    @staticmethod
    def problematic(problem: str) -> "Entry":
        return Entry(Kind.PROBLEMATIC, problem=problem)

    @staticmethod
    def phantom(contents: Optional[dict[str, "Entry"]] = None) -> "Entry":
        return Entry(Kind.PHANTOM, contents or {})

    def shallow_equal(self, other: Optional["Entry"]) -> bool:
        """Same kind and same own properties, ignoring directory contents."""
        if other is None or other.kind != self.kind:
            return False
        if self.kind == Kind.FILE:
            return self.digest == other.digest and self.executable == other.executable
        if self.kind == Kind.SYMLINK:
            return self.target == other.target
        if self.kind == Kind.PROBLEMATIC:
            return self.problem == other.problem
        return True

    def shallow(self) -> "Entry":
        """This entry without directory contents (what conflicts show: "slim" changes)."""
        if self.kind in (Kind.DIRECTORY, Kind.PHANTOM) and self.contents:
            return Entry(self.kind)
        return self


_CONTAINER_KINDS = (Kind.DIRECTORY, Kind.PHANTOM)
UNTRACKED = Entry(Kind.UNTRACKED)


class Change(msgspec.Struct, frozen=True, array_like=True):
    """Replace ``old`` (what the side has, per its scan) with ``new`` at ``path``."""

    path: str
    old: Optional[Entry]
    new: Optional[Entry]


class Conflict(msgspec.Struct, frozen=True, array_like=True):
    """Both sides changed ``root`` in ways that cannot both be kept."""

    root: str
    alpha_changes: list[Change]
    beta_changes: list[Change]


class Problem(msgspec.Struct, frozen=True, array_like=True):
    path: str
    error: str


def join(parent: str, name: str) -> str:
    """Join a root-relative parent path and a child name."""
    return f"{parent}/{name}" if parent else name


def walk(entry: Optional[Entry], path: str = ""):
    """Yield ``(path, entry)`` for an entry and all its descendants, parents first."""
    if entry is None:
        return
    stack = [(path, entry)]
    while stack:
        current_path, current = stack.pop()
        yield current_path, current
        if current.contents:
            for name in sorted(current.contents, reverse=True):
                stack.append((join(current_path, name), current.contents[name]))


def lookup(root: Optional[Entry], path: str) -> Optional[Entry]:
    """The entry at ``path`` below ``root``, or None."""
    entry = root
    if path == "":
        return entry
    for name in path.split("/"):
        if entry is None or not entry.contents:
            return None
        entry = entry.contents.get(name)
    return entry


class Counts(msgspec.Struct, frozen=True, array_like=True):
    directories: int = 0
    files: int = 0
    symbolic_links: int = 0
    total_file_size: int = 0


def count(root: Optional[Entry]) -> Counts:
    """Synchronizable directories, files and symlinks below and including ``root``.

    ``total_file_size`` is not known from entries alone (they carry digests, not sizes); the
    scanner fills it in.
    """
    directories = files = links = 0
    for _, entry in walk(root):
        if entry.kind == Kind.DIRECTORY:
            directories += 1
        elif entry.kind == Kind.FILE:
            files += 1
        elif entry.kind == Kind.SYMLINK:
            links += 1
    return Counts(directories, files, links, 0)


def problems(root: Optional[Entry]) -> list[Problem]:
    """Problems recorded in a snapshot, sorted by path (``""`` is the root)."""
    return [Problem(path, entry.problem) for path, entry in walk(root) if entry.kind == Kind.PROBLEMATIC]
