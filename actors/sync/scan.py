"""Scanning a synchronization root into a snapshot (the filesystem shell of the sync core).

``scan(root, ...)`` walks the root with directory file descriptors (``openat``-style: every child
is opened relative to its parent's descriptor with ``O_NOFOLLOW``) and returns a ``ScanResult``:
the root ``Entry`` (``None`` if the root does not exist), the scan problems, counts, and the
updated ``DigestCache``.

What each on-disk thing becomes:
- directory -> ``Kind.DIRECTORY`` (its contents scanned), file -> ``Kind.FILE`` with the digest of
  the session's hash and, in portable permissions mode, the executable bit (any of u/g/o x);
- symbolic link -> ``Kind.SYMLINK`` if ``symlink_problem`` accepts it (portable / posix-raw),
  ``Kind.PROBLEMATIC`` if not, ``Kind.UNTRACKED`` in symlink mode ``ignore``;
- sockets, FIFOs, devices and ignored paths -> ``Kind.UNTRACKED`` (never read, never traversed;
  with docker ignore syntax an ignored directory that may hold re-included content is traversed
  as ``Kind.PHANTOM``);
- names starting with ``TEMPORARY_PREFIX`` -> skipped entirely;
- problematic (recorded, never synchronized, never deleted): unreadable file ("unable to open
  file: ..."), unreadable directory ("unable to read directory contents: ..." / "unable to open
  directory: ..."), non-UTF-8 names ("non-UTF-8 filename"; the name is shown with its bad bytes
  as ``\\xNN`` escapes), a file whose size changed while hashed ("hashed size mismatch"), a
  directory on another filesystem ("scan crossed filesystem boundary"), a directory nested
  ``MAX_DEPTH`` levels below the root ("directory nested too deeply: ..."; its contents are not
  scanned: every later step of the pipeline recurses once or twice per level, see
  docs/decisions.md).

Unchanged files are never re-hashed: a file whose lstat metadata (size, mtime, inode, mode)
matches its cache record reuses the cached digest (``ScanResult.hashed`` counts the files that
were read).

Files with no cache record (a cold scan) are not lstat-ed: a name the listing types as a regular
file is opened (``O_NOFOLLOW | O_NONBLOCK``), fstat-ed, read and closed, and its record is the
fstat of that descriptor, so it describes the bytes that were hashed whatever happened since the
listing (``_Walker.hash_opened``: replaced by a non-regular file -> "file changed type during
scan", by a symbolic link -> "unable to open file", gone -> absent, size not fstat's -> "hashed
size mismatch"; modified too shortly before the scan (``cache.racy``) -> racy record).

Incremental scan: with ``previous`` and ``dirty`` (root-relative paths reported by a watcher),
only the dirty paths and their ancestors are re-examined: each dirty path is lstat-ed through its
ancestors' descriptors (gone -> dropped; a file -> re-hashed only if its metadata changed; a
directory -> rescanned as a whole subtree), each ancestor is re-opened (if it is no longer a
directory on the same device, it is re-examined whole) and rebuilt copy-on-write; everything else
is reused from ``previous``. The watcher must report created and deleted names themselves (inotify
does): a parent directory is not re-listed for unreported siblings. Report ``""`` (or pass
``dirty=None``) to rescan everything.

Two cores: a big full scan without a ``reuse`` tree may walk part of the tree in a forked child
process (``scan_split``: only past ~20 ms and 1,000 files; a child that fails is replaced by the
parent's own walk). The result is the same value a serial walk returns.

Errors (``ScanError``): the root is a symbolic link, the root directory cannot be opened or read,
the entry count exceeds ``max_entry_count``. Everything below the root becomes an entry or a
problem; the scan keeps going.
"""

from __future__ import annotations

import os
import stat as _stat
import sys
import time
from typing import Iterable, Optional

import structlog

from .cache import META_SIZE, RACY_MTIME, RACY_WINDOW_NS, DigestCache, racy, mode_of, pack, pack_meta, size_of, split
from .hashing import BLOCK_SIZE as _BLOCK_SIZE, hash_fd, one_shot
from .model import UNTRACKED, Counts, Entry, Kind, Problem, join, walk
from .paths import UnsafePathError, split_path
from .settings import TEMPORARY_PREFIX, HashAlgorithm, PermissionsMode, SymlinkMode

from .symlinks import symlink_problem
from . import scan_split

log = structlog.get_logger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_IFMT = 0o170000
_IFREG = _stat.S_IFREG
_IFDIR = _stat.S_IFDIR
_IFLNK = _stat.S_IFLNK
_open, _fstat, _read, _close = os.open, os.fstat, os.read, os.close
_pack_meta = pack_meta

NON_UTF8 = "non-UTF-8 filename"
SIZE_MISMATCH = "hashed size mismatch"
CROSSED_FILESYSTEM = "scan crossed filesystem boundary"
# A directory whose root-relative path has this many components is a problem (contents not
# scanned): deeper snapshots would overflow Python's recursion limit in ``Entry ==``, msgspec
# and the recursive steps of the pipeline (measured: docs/decisions.md).
MAX_DEPTH = 256
TOO_DEEP = f"directory nested too deeply (more than {MAX_DEPTH - 1} levels below the root)"

# (directories, files, symbolic links, total file size) of a subtree.
_ZERO = (0, 0, 0, 0)
_FILE = Kind.FILE


# Whether a big full scan may put part of its walk in a forked child (``scan_split``).
_SPLIT = hasattr(os, "fork")


class ScanError(Exception):
    """The scan as a whole failed (the cycle should report it and retry later)."""


class ScanResult:
    """The outcome of one scan.

    ``root``: the snapshot (``None`` if the root does not exist); ``problems``: scan problems
    sorted by path; ``counts``: directories, files, symlinks and total file size; ``cache``: the
    updated digest cache; ``hashed``: how many files were read and hashed by this scan.
    The other attributes are bookkeeping that lets the next scan be incremental.
    """

    __slots__ = (
        "root", "cache", "hashed", "counts", "_problems", "_subtotals", "_device", "_settings", "_ignorer",
        "_ignore_memo",
    )

    def __init__(self, root, cache, hashed, counts, problems, subtotals, device, settings, ignorer=None, memo=None):
        self.root: Optional[Entry] = root
        self.cache: DigestCache = cache
        self.hashed: int = hashed
        self.counts: Counts = counts
        self._problems: dict[str, str] = problems
        self._subtotals: dict[str, tuple] = subtotals
        self._device = device
        self._settings = settings
        self._ignorer = ignorer
        self._ignore_memo: dict[str, bool] = memo if memo is not None else {}

    @property
    def problems(self) -> list[Problem]:
        return [Problem(path, self._problems[path]) for path in sorted(self._problems)]

    def __repr__(self) -> str:
        return f"ScanResult(counts={self.counts!r}, problems={len(self._problems)}, hashed={self.hashed})"


def display_name(name: str) -> Optional[str]:
    """``None`` for a valid UTF-8 name, else a printable stand-in (bad bytes as ``\\xNN``)."""
    if name.isascii():
        return None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return None


class _MemoizedIgnorer:
    """An ignorer whose answers are remembered from one scan to the next (the ignore cache).

    ``known`` holds the previous scan's answers, ``seen`` collects this scan's (for a full scan a
    fresh dict, so answers for paths that disappeared are dropped; for an incremental scan the
    same dict). Keys are paths, with a trailing ``/`` for directories.
    """

    __slots__ = ("ignorer", "known", "seen")

    def __init__(self, ignorer, known: dict, seen: dict):
        self.ignorer = ignorer
        self.known = known
        self.seen = seen

    def ignored(self, path: str, directory: bool) -> bool:
        key = path + "/" if directory else path
        value = self.seen.get(key)
        if value is None:
            value = self.known.get(key)
            if value is None:
                value = self.ignorer.ignored(path, directory)
            self.seen[key] = value
        return value

    def may_reinclude_below(self, path: str) -> bool:
        return self.ignorer.may_reinclude_below(path)


class _Walker:
    """State of one scan; methods are the imperative walk."""

    def __init__(self, algorithm, ignorer, symlink_mode, permissions_mode, old, out, problems, subtotals, device,
                 incremental: bool = False):
        self.algorithm = HashAlgorithm(algorithm)
        self.one_shot = one_shot(self.algorithm)
        self.ignorer = ignorer
        self.symlink_mode = SymlinkMode(symlink_mode)
        self.track_executable = PermissionsMode(permissions_mode) is PermissionsMode.PORTABLE
        self.old = old  # parent path -> {name -> packed cache record} to reuse
        self.out = out  # parent path -> {name -> packed cache record} seen by this scan
        # An incremental scan writes into the cache's own records (``out``): there, records of
        # paths its previous snapshot did not hold (a transition wrote them since) are reusable
        # too, as a full scan would reuse them (``reusable``).
        self.incremental = incremental
        self.problems = problems
        self.subtotals = subtotals
        self.device = device
        self.hashed = 0
        # A ``scan_split.Splitter`` when part of this walk may go to a forked child.
        self.split = None
        # Files modified too shortly before this instant (``cache.racy``; never before
        # ``racy_after``) are hashed but their records are marked racy.
        self.started_ns = time.time_ns()
        self.racy_after = self.started_ns - RACY_WINDOW_NS

    # -- single entries -------------------------------------------------------------------------

    def problem(self, path: str, text: str) -> Entry:
        self.problems[path] = text
        return Entry(Kind.PROBLEMATIC, problem=text)

    def hash_file(self, dfd: int, name: str, path: str, st=None):
        """Hash a regular file: its packed cache record, or a problem ``Entry``.

        The record's metadata is the ``fstat`` of the descriptor that was read, never the
        listing's ``lstat``: it describes the very file whose bytes were hashed (a file replaced
        after it was listed is recorded as what was opened, or as a problem if it is no longer
        a regular file)."""
        outcome = self.hash_opened(dfd, name, path)
        if outcome is None:
            return self.problem(path, "unable to open file: No such file or directory")
        return outcome if type(outcome) is Entry else outcome[0]

    def hash_opened(self, dfd: int, name: str, path: str):
        """Open ``name`` (``O_NOFOLLOW | O_NONBLOCK``), ``fstat`` it and hash it: ``(record, size,
        mode)``, a problem ``Entry``, or ``None`` if the name no longer exists (it vanished since
        it was listed: the caller treats it as gone, like a failed ``lstat``).

        Problems: cannot open ("unable to open file"), the opened thing is not a regular file
        ("file changed type during scan"), read fails ("unable to read file"), the bytes read are
        not ``fstat``'s size ("hashed size mismatch": it grew or shrank while read). A file
        modified too shortly before the scan started (``cache.racy``) gets ``RACY_MTIME`` in its
        record (re-hashed next time)."""
        try:
            fd = _open(name, _FILE_FLAGS, dir_fd=dfd)
        except FileNotFoundError:
            return None
        except OSError as error:
            return self.problem(path, f"unable to open file: {error.strerror}")
        try:
            opened = _fstat(fd)
            mode = opened.st_mode
            if mode & _IFMT != _IFREG:
                return self.problem(path, "file changed type during scan")
            size = opened.st_size
            self.hashed += 1
            try:
                if size < _BLOCK_SIZE:
                    # The common case inline: one read of size + 1 proves the size (a shorter
                    # read means the file shrank, a longer one that it grew).
                    data = _read(fd, size + 1)
                    if len(data) != size:
                        return self.problem(path, SIZE_MISMATCH)
                    digest = self.one_shot(data)
                else:
                    digest, read = hash_fd(fd, self.algorithm, size)
                    if read != size:
                        return self.problem(path, SIZE_MISMATCH)
            except OSError as error:
                return self.problem(path, f"unable to read file: {error.strerror}")
        finally:
            _close(fd)
        mtime = opened.st_mtime_ns
        if mtime >= self.racy_after and racy(mtime, self.started_ns):
            mtime = RACY_MTIME
        return _pack_meta(size, mtime, opened.st_ino, mode) + digest, size, mode

    def examine(self, dfd: int, st: os.stat_result, name: str, path: str, old_records: dict, new_records: dict,
                before: Optional[Entry] = None):
        """Scan one directory child, given its lstat result: ``(entry, subtotal)``.

        ``old_records`` / ``new_records`` are the parent directory's cache records (by name) to
        reuse and to fill; ``before``: the previous snapshot's entry at ``path`` (reused where
        equal, see ``directory``)."""
        mode = st.st_mode
        kind = mode & _IFMT
        ignorer = self.ignorer
        if kind == _IFREG:
            if ignorer is not None and ignorer.ignored(path, False):
                return UNTRACKED, _ZERO
            record = old_records.get(name)
            if record is None or not record.startswith(pack_meta(st.st_size, st.st_mtime_ns, st.st_ino, mode)):
                record = self.hash_file(dfd, name, path, st)
                if type(record) is Entry:
                    return record, _ZERO
            new_records[name] = record
            executable = self.track_executable and (mode_of(record) & 0o111) != 0
            return _file_entry(record, executable, before), (0, 1, 0, size_of(record))
        if kind == _IFDIR:
            phantom = False
            if ignorer is not None and ignorer.ignored(path, True):
                if not ignorer.may_reinclude_below(path):
                    return UNTRACKED, _ZERO
                phantom = True
            if st.st_dev != self.device:
                return self.problem(path, CROSSED_FILESYSTEM), _ZERO
            if path.count("/") >= MAX_DEPTH - 1:
                return self.problem(path, TOO_DEEP), _ZERO
            split = self.split
            if split is not None:
                claimed = split.consider(dfd, st, name, path)
                if claimed is not None:
                    return claimed, _ZERO  # walked by the split child, filled in by ``merge``
            try:
                child_fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            except OSError as error:
                return self.problem(path, f"unable to open directory: {error.strerror}"), _ZERO
            try:
                return self.directory(child_fd, path, phantom, before)
            finally:
                os.close(child_fd)
        if kind == _IFLNK:
            if self.symlink_mode is SymlinkMode.IGNORE:
                return UNTRACKED, _ZERO
            if ignorer is not None and ignorer.ignored(path, False):
                return UNTRACKED, _ZERO
            try:
                target = os.readlink(name, dir_fd=dfd)
            except OSError as error:
                return self.problem(path, f"unable to read symbolic link: {error.strerror}"), _ZERO
            if display_name(target) is not None:
                return self.problem(path, "invalid symbolic link: target is not valid UTF-8"), _ZERO
            text = symlink_problem(target, path, self.symlink_mode)
            if text:
                return self.problem(path, text), _ZERO
            return Entry(Kind.SYMLINK, target=target), (0, 0, 1, 0)
        # Sockets, FIFOs, devices: never synchronized, never deleted.
        return UNTRACKED, _ZERO

    # -- whole directories ----------------------------------------------------------------------

    def list_directory(self, dfd: int):
        """The listing of an open directory: an iterable context manager of ``os.DirEntry``
        (``os.scandir``; tests override it to change the tree between listing and reading)."""
        return os.scandir(dfd)

    def directory(self, dfd: int, path: str, phantom: bool = False, before: Optional[Entry] = None):
        """Scan a whole directory subtree: ``(entry, subtotal)``.

        ``before``: the previous snapshot's entry at ``path`` (``None``: none). Its file entries
        equal to what this scan finds (same digest and executable bit) are reused, and so is a
        directory entry whose contents come out the same objects: a full rescan of an unchanged
        tree then allocates no new snapshot (and leaves no freed one behind in the heap)."""
        try:
            listing = self.list_directory(dfd)
        except OSError as error:
            return self.problem(path, f"unable to read directory contents: {error.strerror}"), _ZERO
        contents: dict[str, Entry] = {}
        dirs = 0 if phantom else 1
        files = links = size = 0
        examine = self.examine
        hash_opened = self.hash_opened
        # The fast paths of a warm rescan (a regular file whose metadata matches the cache) and
        # of a cold scan (a listed file with no record) are inlined here, not through
        # ``examine``: they run 100k times per scan of a big tree. Both make the entry with
        # ``_file_entry``, as ``examine`` does.
        ignorer = self.ignorer
        old_records = self.reusable(path)
        old_get = old_records.get
        before_contents = (before.contents if before is not None and before.kind == (
            Kind.PHANTOM if phantom else Kind.DIRECTORY) else None) or None
        before_get = before_contents.get if before_contents is not None else None
        new_records: dict[str, bytes] = {}
        track = self.track_executable
        meta = pack_meta
        prefix = TEMPORARY_PREFIX
        intern = sys.intern
        try:
            with listing:
                for item in listing:
                    # Interned: names repeat across directories (index.js, __init__.py...), and
                    # the snapshot and the cache then hold one string for each distinct name.
                    name = intern(item.name)
                    if name[0] == "." and name.startswith(prefix):
                        continue
                    if not name.isascii():
                        shown = display_name(name)
                        if shown is not None:
                            child = f"{path}/{shown}" if path else shown
                            if shown not in contents:
                                contents[shown] = self.problem(child, NON_UTF8)
                            continue
                    child = f"{path}/{name}" if path else name
                    record = old_get(name)
                    if record is None and item.is_file(follow_symlinks=False):
                        # A listed regular file with no cache record (a cold scan): no lstat,
                        # its metadata is the fstat of the descriptor that is read (hash_opened).
                        if ignorer is not None and ignorer.ignored(child, False):
                            contents[name] = UNTRACKED
                            continue
                        outcome = hash_opened(dfd, name, child)
                        if outcome is None:
                            continue  # gone since it was listed
                        if type(outcome) is not tuple:
                            contents[name] = outcome
                            continue
                        record, file_size, file_mode = outcome
                        new_records[name] = record
                        contents[name] = _file_entry(
                            record, track and (file_mode & 0o111) != 0,
                            before_get(name) if before_get is not None else None)
                        files += 1
                        size += file_size
                        continue
                    try:
                        st = item.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    except OSError as error:
                        contents[name] = self.problem(child, f"unable to stat: {error.strerror}")
                        continue
                    mode = st.st_mode
                    if mode & _IFMT == _IFREG:
                        if ignorer is not None and ignorer.ignored(child, False):
                            contents[name] = UNTRACKED
                            continue
                        if record is not None and record.startswith(
                            meta(st.st_size, st.st_mtime_ns, st.st_ino, mode)
                        ):
                            new_records[name] = record
                            contents[name] = _file_entry(
                                record, track and (mode & 0o111) != 0,
                                before_get(name) if before_get is not None else None)
                            files += 1
                            size += st.st_size
                            continue
                    entry, sub = examine(
                        dfd, st, name, child, old_records, new_records,
                        before_get(name) if before_get is not None else None,
                    )
                    contents[name] = entry
                    if sub is not _ZERO:
                        dirs += sub[0]
                        files += sub[1]
                        links += sub[2]
                        size += sub[3]
        except OSError as error:
            # readdir failing half-way: the directory cannot be represented faithfully.
            if self.split is not None and self.split.pending(path):
                self.split.merge(dfd, contents, new_records, old_records, _ZERO)
            return self.problem(path, f"unable to read directory contents: {error.strerror}"), _ZERO
        if self.split is not None and self.split.pending(path):
            dirs, files, links, size = self.split.merge(
                dfd, contents, new_records, old_records, (dirs, files, links, size))
        if new_records:
            # The same records as before: keep the previous dict (the new one is dropped now).
            self.out[path] = old_records if new_records == old_records else new_records
        subtotal = (dirs, files, links, size)
        self.subtotals[path] = subtotal
        kind = Kind.PHANTOM if phantom else Kind.DIRECTORY
        if before_contents is not None and _same_objects(contents, before_contents):
            return before, subtotal
        if not contents and before is not None and before.kind == kind and not before.contents:
            return before, subtotal  # an empty directory, as before
        return Entry(kind, contents), subtotal

    # -- incremental ----------------------------------------------------------------------------

    def reusable(self, path: str) -> dict:
        """The cache records of directory ``path`` a rescan of it may reuse (each only if the
        file's lstat still matches it exactly; a racy record never does): the walk's ``old``
        records, and in an incremental scan also the cache's records of files its previous
        snapshot did not hold there (``forget`` moved those it held to ``old``), e.g. what a
        transition wrote since. Without them the cycle right after an initial sync re-read every
        file the transition had just written and recorded (1 GB at 100k files)."""
        old = self.old.get(path)
        if self.incremental:
            current = self.out.get(path)
            if current:
                return {**current, **old} if old else current
        return old or {}

    def forget(self, path: str, previous: Optional[Entry]) -> None:
        """Drop the bookkeeping of a previous subtree before it is rescanned or removed."""
        if previous is None:
            return
        out, old, problems, subtotals = self.out, self.old, self.problems, self.subtotals
        for sub_path, entry in walk(previous, path):
            kind = entry.kind
            if kind == Kind.FILE:
                parent, name = split(sub_path)
                records = out.get(parent)
                record = None if records is None else records.pop(name, None)
                if record is not None:
                    old.setdefault(parent, {})[name] = record
                    if not records:
                        del out[parent]
            elif kind == Kind.DIRECTORY or kind == Kind.PHANTOM:
                subtotals.pop(sub_path, None)
            elif kind == Kind.PROBLEMATIC:
                problems.pop(sub_path, None)

    def reused_subtotal(self, path: str, entry: Entry):
        kind = entry.kind
        if kind == Kind.FILE:
            parent, name = split(path)
            record = self.out.get(parent, {}).get(name)
            return (0, 1, 0, size_of(record) if record is not None else 0)
        if kind == Kind.DIRECTORY or kind == Kind.PHANTOM:
            return self.subtotals.get(path, _ZERO)
        if kind == Kind.SYMLINK:
            return (0, 0, 1, 0)
        return _ZERO

    def update(self, dfd: int, path: str, previous: Entry, dirty: dict, hint: Optional[Entry] = None):
        """Re-examine the dirty children of a directory; reuse everything else.

        ``dirty`` maps child names to ``True`` (re-examine that child, as a whole subtree if
        it is a directory) or to a sub-trie (only some paths below that child are dirty).
        ``hint``: the entry at ``path`` of a tree expected to equal what this scan finds (the
        ``reuse`` tree of ``scan``): re-examined children equal to its entries are its objects.
        """
        hints = hint.contents if hint is not None and hint.kind == previous.kind else None
        contents = dict(previous.contents)
        dirs, files, links, size = self.subtotals.get(path, _ZERO)
        for name, mark in dirty.items():
            if name.startswith(TEMPORARY_PREFIX):
                continue
            shown = display_name(name)
            if shown is not None:
                # A non-UTF-8 name is recorded under its printable stand-in, as a problem.
                child = join(path, shown)
                self.forget(child, contents.get(shown))
                try:
                    os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except OSError:
                    contents.pop(shown, None)
                else:
                    contents[shown] = self.problem(child, NON_UTF8)
                continue
            child = join(path, name)
            old_entry = contents.get(name)
            if old_entry is not None:
                old_sub = self.reused_subtotal(child, old_entry)
            else:
                old_sub = _ZERO
            entry = sub = None
            if mark is not True and old_entry is not None and (
                old_entry.kind == Kind.DIRECTORY or old_entry.kind == Kind.PHANTOM
            ):
                entry, sub = self.update_below(dfd, name, child, old_entry, mark,
                                               hints.get(name) if hints else None)
            if entry is None:
                self.forget(child, old_entry)
                entry, sub = self.examine_name(dfd, name, child, hints.get(name) if hints else None)
            if entry is None:
                contents.pop(name, None)
            else:
                contents[name] = entry
            dirs += sub[0] - old_sub[0]
            files += sub[1] - old_sub[1]
            links += sub[2] - old_sub[2]
            size += sub[3] - old_sub[3]
        subtotal = (dirs, files, links, size)
        self.subtotals[path] = subtotal
        if hints is not None and _same_objects(contents, hints):
            return hint, subtotal
        return Entry(previous.kind, contents), subtotal

    def update_below(self, dfd: int, name: str, child: str, old_entry: Entry, mark: dict,
                     hint: Optional[Entry] = None):
        """Descend into a still-existing directory: ``(entry, subtotal)``, or ``(None, None)``
        when it is no longer the same kind of thing (the caller re-examines it whole)."""
        try:
            child_fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
        except OSError:
            return None, None
        try:
            if os.fstat(child_fd).st_dev != self.device:
                return None, None
            return self.update(child_fd, child, old_entry, mark, hint)
        finally:
            os.close(child_fd)

    def examine_name(self, dfd: int, name: str, child: str, before: Optional[Entry] = None):
        """Examine one child by name (it may have vanished): ``(entry or None, subtotal)``."""
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None, _ZERO
        except OSError as error:
            return self.problem(child, f"unable to stat: {error.strerror}"), _ZERO
        parent = split(child)[0]
        old_records = self.reusable(parent)  # (before the setdefault: it may be the same dict)
        new_records = self.out.setdefault(parent, {})
        try:
            return self.examine(dfd, st, name, child, old_records, new_records, before)
        finally:
            if not new_records:
                self.out.pop(parent, None)


def _file_entry(record: bytes, executable: bool, before: Optional[Entry]) -> Entry:
    """The snapshot entry of a regular file with cache ``record``: ``before`` (the previous
    snapshot's entry at its path) when it says the same (a file, same executable bit, same
    digest), so an unchanged tree allocates no new entries; else a new one."""
    if (before is not None and before.kind is _FILE and before.executable == executable
            and record.endswith(before.digest) and len(record) == META_SIZE + len(before.digest)):
        return before
    return Entry(_FILE, digest=record[META_SIZE:], executable=executable)


def _same_objects(contents: dict, before: dict) -> bool:
    """Whether two directory contents hold the very same entry objects under the same names
    (identity only: never a deep comparison of subtrees)."""
    if len(contents) != len(before):
        return False
    get = before.get
    for name, entry in contents.items():
        if get(name) is not entry:
            return False
    return True


def _dirty_tree(dirty: Iterable[str], logger) -> Optional[dict]:
    """A trie of dirty paths: name -> subtrie, or ``True`` for "this whole subtree".

    Returns ``None`` when a full scan is needed (the root itself, or a path we cannot trust).
    """
    tree: dict = {}
    for path in dirty:
        try:
            components = split_path(path)
        except UnsafePathError:
            logger.warning("unusable dirty path, scanning everything", path=path)
            return None
        if not components:
            return None
        node = tree
        for component in components[:-1]:
            sub = node.get(component)
            if sub is True:
                break
            if sub is None:
                sub = node[component] = {}
            node = sub
        else:
            node[components[-1]] = True
    return tree


def scan(
    root: str,
    *,
    hash: HashAlgorithm = HashAlgorithm.XXH128,
    ignorer=None,
    symlink_mode: SymlinkMode = SymlinkMode.PORTABLE,
    permissions_mode: PermissionsMode = PermissionsMode.PORTABLE,
    cache: Optional[DigestCache] = None,
    previous: Optional[ScanResult] = None,
    dirty: Optional[Iterable[str]] = None,
    max_entry_count: int = 0,
    logger=None,
    reuse: Optional[Entry] = None,
) -> ScanResult:
    """Scan ``root`` (see the module docstring); incremental when ``previous`` and ``dirty`` are
    given and ``previous`` used the same settings (and the same ignorer object).

    ``reuse``: a tree of this root (same settings) whose entries the scan reuses where they equal
    what it finds (memory: an unchanged tree is not built again): the previous snapshot, or what
    a transition just wrote (an incremental scan then takes the written entries instead of
    building a second copy of them). It never changes the result's value, only which objects
    hold it.

    ``logger``: a structlog logger bound with ``session``, ``actor`` and ``side``."""
    logger = logger or log
    hash = HashAlgorithm(hash)
    if cache is None:
        cache = DigestCache(hash)
    elif cache.algorithm is not hash:
        logger.info("digest cache holds another hash, starting it empty", cache=cache.algorithm.value, hash=hash.value)
        cache.replace({})
        cache.algorithm = hash
    settings = (hash, SymlinkMode(symlink_mode), PermissionsMode(permissions_mode))
    same_settings = previous is not None and previous._settings == settings and previous._ignorer is ignorer

    try:
        root_stat = os.lstat(root)
    except FileNotFoundError:
        cache.replace({})
        return ScanResult(None, cache, 0, Counts(), {}, {}, None, settings, ignorer)
    except OSError as error:
        raise ScanError(f"unable to access synchronization root {root!r}: {error.strerror}") from None
    root_kind = root_stat.st_mode & _IFMT
    if root_kind == _IFLNK:
        raise ScanError(f"synchronization root {root!r} is a symbolic link")

    tree = None
    if (
        dirty is not None
        and same_settings
        and previous.root is not None
        and previous.root.kind == Kind.DIRECTORY
        and root_kind == _IFDIR
        and previous._device == root_stat.st_dev
        and previous.cache is cache
    ):
        tree = _dirty_tree(dirty, logger)

    memo = None
    if ignorer is not None and not _ignores_nothing(ignorer):
        known = previous._ignore_memo if same_settings else {}
        memo = _MemoizedIgnorer(ignorer, known, known if tree is not None else {})

    if tree is not None:
        walker = _Walker(
            hash, memo, symlink_mode, permissions_mode, {}, cache.directories,
            dict(previous._problems), dict(previous._subtotals), root_stat.st_dev, incremental=True,
        )
        if not tree:
            return ScanResult(
                previous.root, cache, 0, previous.counts, walker.problems, walker.subtotals,
                root_stat.st_dev, settings, ignorer, previous._ignore_memo,
            )
        fd = _open_root(root)
        try:
            entry, subtotal = walker.update(fd, "", previous.root, tree, reuse)
        finally:
            os.close(fd)
        cache.replace(walker.out)
    else:
        walker = _Walker(
            hash, memo, symlink_mode, permissions_mode, cache.directories, {}, {}, {}, root_stat.st_dev,
        )
        if root_kind == _IFDIR:
            fd = _open_root(root)
            # Only without ``reuse``: the child cannot hand back the parent's objects.
            if reuse is None and _SPLIT:
                walker.split = scan_split.Splitter(walker, fd, logger)
            try:
                entry, subtotal = walker.directory(fd, "", before=reuse)
            finally:
                if walker.split is not None:
                    walker.split.close()
                    walker.split = None
                os.close(fd)
        elif root_kind == _IFREG:
            entry, subtotal = _scan_root_file(walker, root, root_stat)
        else:
            entry, subtotal = UNTRACKED, _ZERO
        cache.replace(walker.out)
        if entry.kind == Kind.PROBLEMATIC and root_kind == _IFDIR:
            raise ScanError(f"unable to scan synchronization root {root!r}: {entry.problem}")

    counts = Counts(*subtotal)
    if max_entry_count and counts.directories + counts.files + counts.symbolic_links > max_entry_count:
        raise ScanError(
            f"exceeded allowed entry count ({counts.directories + counts.files + counts.symbolic_links}"
            f" > {max_entry_count})"
        )
    return ScanResult(
        entry, cache, walker.hashed, counts, walker.problems, walker.subtotals, root_stat.st_dev, settings,
        ignorer, None if memo is None else memo.seen,
    )


def _ignores_nothing(ignorer) -> bool:
    """True for an ignorer with no patterns and no VCS ignoring: the scan then asks it nothing
    and keeps no memo (the memo holds every path of the tree: about 10 MB per 100k files)."""
    return not getattr(ignorer, "patterns", True) and not getattr(ignorer, "_ignore_vcs", True)


def _open_root(root: str) -> int:
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as error:
        raise ScanError(f"unable to open synchronization root {root!r}: {error.strerror}") from None


def _scan_root_file(walker: _Walker, root: str, root_stat):
    parent = os.path.dirname(os.path.abspath(root)) or "/"
    name = os.path.basename(os.path.abspath(root))
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        record = walker.old.get("", {}).get("")
        if record is None or not record.startswith(pack_meta(
            root_stat.st_size, root_stat.st_mtime_ns, root_stat.st_ino, root_stat.st_mode,
        )):
            record = walker.hash_file(dfd, name, "", root_stat)
            if type(record) is Entry:
                return record, _ZERO
        walker.out[""] = {"": record}
    finally:
        os.close(dfd)
    executable = walker.track_executable and (mode_of(record) & 0o111) != 0
    return Entry(Kind.FILE, digest=record[META_SIZE:], executable=executable), (0, 1, 0, size_of(record))
