"""Applying one side's changes on disk (the transition): the most safety-critical code we have.

``transition(root, changes, ...)`` applies each ``Change(path, old, new)`` in order, where ``old``
is what this side's last scan saw at ``path`` and ``new`` what reconcile wants there, and returns
a ``TransitionResult``: for every change it could address, ``Change(path, old, actual)`` with the
entry that really exists afterwards (so the ancestor records only what happened), the problems it
met, and whether staged content was missing.

Rules (design brief invariants 1 and 6):
- Every path is validated and resolved inside the root through directory descriptors opened with
  ``O_NOFOLLOW``; a symbolic link or non-directory in a parent component stops the change (see
  ``paths.py``). A path with ``..``, an absolute path, an empty component or a NUL byte is refused
  and left out of the results (nothing happened there).
- Nothing is overwritten or deleted unless it is still exactly what the scan saw: for a file, its
  lstat metadata (size, mtime, inode, mode) must equal the digest-cache record and the cached
  digest must equal ``old``'s digest (without a record, the file is hashed now and must match);
  for a symlink, its target must equal ``old``'s. Otherwise the path is left alone and
  "modification detected" is reported.
- A directory is removed by removing the entries ``old`` lists; untracked or problematic children
  are never touched, and anything left afterwards (including names that appeared since the scan)
  keeps the directory and is reported as "unknown content encountered on disk".
- New content comes from the staging store, is checked, gets its mode and ownership (only where
  the staged file's differ), and only then appears under its real name. The check: content the
  store verified before it took its digest name in this process (``Staging.verified_size``:
  every writer of the store hashes first) is trusted for its name, and only its size is
  compared (one ``lstat``), as Mutagen trusts its staging sink; content staged by an earlier
  process is hashed and compared with the digest. Content that fails the check is never used:
  it is removed from staging and reported ("staged file does not match its digest"), and the
  endpoint fetches it again. The name is given by ``rename`` over the old file for a swap
  (atomic), a rename that never replaces (``renameat2(RENAME_NOREPLACE)``, else ``link``) for a
  new file. When the staging store is on the target directory's filesystem and the content is not
  needed again in this transition, the staged file itself is prepared and moved (one rename per
  file); otherwise it is copied (or moved) to a ``TEMPORARY_PREFIX`` name in the target directory
  first. A reader, or a crash at any point, sees the old file or the new one, never a partial
  one; a crash can leave a temporary name behind, which scans skip and a later removal of its
  directory deletes (or a prepared file in staging, which is emptied after each transition).
- A new directory below the root is built whole under a ``TEMPORARY_PREFIX`` name beside its
  final name, then moved there with one rename that never replaces (the root itself, when it is
  created, is made in place, unless it is built from placed content: below): readers see no
  directory or the complete one, and a watcher gets one event for the subtree instead of one
  per entry. A name that appeared meanwhile is left alone ("modification detected") and the
  subtree built is removed; a crash leaves a temporary directory (named with the builder's
  process id), which scans skip and which, once that process is gone, the next build in the
  same parent or a removal of the parent deletes.
- Content placed on arrival (``Staging.tree_directory``, ``agent.transfer``): when a new
  directory is built and the store's tree has a directory at its path, that directory is renamed
  in as the build directory (``adopt``: one rename instead of one per file) and only checked and
  completed (``complete``): a file placed for exactly this (path, digest) is checked with one
  ``lstat`` (size, type and mode; ``prepare`` otherwise) and kept, a subdirectory that came along
  is completed the same way (its mode set), anything else there is moved out of the way
  (``evacuate``: content still needed in this transition goes into the store under its digest,
  the rest is removed) and the planned child takes the general path; names the plan does not
  have are evacuated before the directory takes its final name. Results, problems and cache
  records are those of the general path. When the rename cannot be done (another filesystem in
  between, nothing placed there), the directory is built as before and ``place`` takes each
  placed file from the tree by its record (or by the key of the path it was placed for, when the
  plan wants that content elsewhere).
- The root created from placed content (``build_root``): when the root does not exist and the
  store's tree holds placed content, the whole tree is renamed into the root's parent under a
  build name that carries the process id and a tag of the root's name, completed as an adopted
  directory, and given the root's name with a rename that never replaces. A root that appeared
  meanwhile is left alone ("modification detected") and the build goes back as the store's tree
  (else is removed). Not with a store inside the root (``internal``), nor when the rename fails
  (another filesystem): the root is then made in place as before. A crash leaves only the build
  name next to the root; the first transition of a later process on that root removes such
  leftovers of a process that is gone (``_remove_root_leftovers``: only this root's tag).
- A change of the executable bit only is a ``chmod`` in place (after the same verification).
- New files get ``new_file_mode(default_file_mode, executable, permissions_mode)``, new
  directories ``default_directory_mode``, both the default owner and group if configured.
- A missing parent is not recreated: the change is reported ("parent path does not exist") and
  nothing is recorded there, because the ancestor could not hold the child without its parent.
- OSError in one change becomes a problem for that path; the other changes still run.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import itertools
import os
import secrets
import stat as _stat
import time
from collections import Counter
from typing import NamedTuple, Optional, Union

import structlog

from .cache import RACY_MTIME, DigestCache
from .hashing import DIGEST_SIZES, hash_fd
from .model import Change, Entry, Kind, Problem, join, walk
from .paths import ParentError, UnsafePathError, open_directory, split_path
from .settings import (
    DEFAULT_DIRECTORY_MODE,
    DEFAULT_FILE_MODE,
    TEMPORARY_PREFIX,
    HashAlgorithm,
    PermissionsMode,
    SymlinkMode,
)
from .staging import TREE, Staging, path_key

from .permissions import new_file_mode, parse_group, parse_owner, with_executability
from .symlinks import symlink_problem

log = structlog.get_logger(__name__)

MODIFICATION_DETECTED = "modification detected"
UNKNOWN_CONTENT = "unknown content encountered on disk"
PARENT_MISSING = "parent path does not exist"
STAGED_MISSING = "staged file missing"
STAGED_MISMATCH = "staged file does not match its digest"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_COPY_BLOCK = 1 << 20
# Names of the files this module writes before they get their real names. One left behind by a
# crash is garbage: removing a directory deletes those (and only those) unknown names.
_OWN_TEMPORARY = f"{TEMPORARY_PREFIX}new-"
# Directories being built (``build_directory``) carry the builder's process id:
# ``<_OWN_BUILD><pid>-<token><serial>``; one whose process is gone is a crash's leftover.
_OWN_BUILD = f"{_OWN_TEMPORARY}dir-"
_TRACKED = (Kind.DIRECTORY, Kind.FILE, Kind.SYMLINK)
_UNSET = object()


class TransitionResult(NamedTuple):
    results: list[Change]
    problems: list[Problem]
    missing_staged: bool


class _Placed(NamedTuple):
    """A verified file ready to take its name: ``name`` relative to ``dir_fd`` (None: a path).
    ``staged``: the staged file's own path when it is the staged file itself (``name`` is then
    that path, or its name relative to the open store directory ``dir_fd``); None for a
    temporary in the target directory, which the caller removes if it is still there."""

    dir_fd: Optional[int]
    name: str
    stat: os.stat_result
    staged: Optional[str] = None


class _Failed(Exception):
    """One change (or sub-change) could not be applied; carries the problem text."""

    def __init__(self, path: str, text: str):
        super().__init__(text)
        self.path = path
        self.text = text


def _resolve_id(value: Union[int, str, None], which: str) -> int:
    """A uid/gid (``None`` -> -1, "leave unchanged")."""
    if value is None:
        return -1
    if isinstance(value, int):
        return value
    return parse_owner(value) if which == "owner" else parse_group(value)


class _Transition:
    def __init__(self, root, cache, staging, algorithm, symlink_mode, permissions_mode,
                 file_mode, directory_mode, owner, group, uses, logger):
        self.root = root
        self.cache: DigestCache = cache
        self.staging: Staging = staging
        self.algorithm = HashAlgorithm(algorithm)
        self.symlink_mode = SymlinkMode(symlink_mode)
        self.permissions_mode = PermissionsMode(permissions_mode)
        self.portable = self.permissions_mode is PermissionsMode.PORTABLE
        self.file_mode = file_mode
        self.directory_mode = directory_mode
        self.uid = owner
        self.gid = group
        self.uses: Counter = uses
        self.problems: list[Problem] = []
        self.log = logger
        self.missing_staged = False
        self.staging_device = _device_of(staging.directory)
        self.staging_prefix = os.path.join(staging.directory, "")
        self.token = secrets.token_hex(6)  # temporary names: one random part, then a serial
        self.serial = itertools.count()
        self.devices: dict[int, int] = {}  # open directory descriptor -> its device
        self.cleaned: set[str] = set()  # parents whose leftover builds were removed
        self.store_fd: Optional[int] = None  # the staging store's directory, once opened
        self.tree_fd: Optional[int] = None  # the store's tree (content placed on arrival)
        self.tree_index: Optional[dict[int, str]] = None  # path key -> path in the tree (lazy)
        # Where the tree is (a path ending in "/"): the store's, or the root being built from it.
        self.tree_prefix = os.path.join(staging.directory, TREE, "")
        # A store inside the root (``internal``) can never hold the root's own build.
        self.store_in_root = self.staging_prefix.startswith(os.path.join(os.path.abspath(root), ""))
        self.file_modes = {executable: new_file_mode(file_mode, executable, self.permissions_mode)
                           for executable in (False, True)}

    def _device(self, dfd: int) -> int:
        device = self.devices.get(dfd)
        return os.fstat(dfd).st_dev if device is None else device

    def report(self, path: str, text: str) -> None:
        self.problems.append(Problem(path, text))
        self.log.info("transition problem", path=path, problem=text)

    # -- verification ---------------------------------------------------------------------------

    def file_unchanged(self, pfd: int, name: str, path: str, st: os.stat_result, old: Entry) -> bool:
        """Whether the file at (pfd, name), lstat ``st``, is exactly what the scan saw as ``old``."""
        if not _stat.S_ISREG(st.st_mode):
            return False
        if self.portable and bool(st.st_mode & 0o111) != old.executable:
            return False
        record = self.cache.record(path)
        if record is not None and record[1] != RACY_MTIME:
            return (
                record[0] == st.st_size
                and record[1] == st.st_mtime_ns
                and record[2] == st.st_ino
                and record[3] == st.st_mode
                and record[4] == old.digest
            )
        # No trustworthy record (a cache that failed to load, or a file hashed while it was still
        # being written): the content itself must match.
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=pfd)
        except OSError:
            return False
        try:
            opened = os.fstat(fd)
            if opened.st_ino != st.st_ino or opened.st_mtime_ns != st.st_mtime_ns:
                return False
            digest, read = hash_fd(fd, self.algorithm, opened.st_size)
        finally:
            os.close(fd)
        if read != st.st_size or digest != old.digest:
            return False
        self.cache.put_stat(path, st, digest)
        return True

    # -- removal --------------------------------------------------------------------------------

    def remove(self, pfd: int, name: str, path: str, old: Entry) -> tuple[bool, Optional[Entry]]:
        """Remove what the scan saw as ``old``: ``(removed, what remains, ancestor-safe)``."""
        kind = old.kind
        if kind == Kind.FILE:
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                self.cache.discard(path)
                return True, None
            if not self.file_unchanged(pfd, name, path, st, old):
                self.report(path, MODIFICATION_DETECTED)
                return False, old
            os.unlink(name, dir_fd=pfd)
            self.cache.discard(path)
            return True, None
        if kind == Kind.SYMLINK:
            try:
                target = os.readlink(name, dir_fd=pfd)
            except FileNotFoundError:
                return True, None
            except OSError as error:
                if error.errno != errno.EINVAL:  # EINVAL: not a symlink any more
                    raise
                self.report(path, MODIFICATION_DETECTED)
                return False, old
            if target != old.target:
                self.report(path, MODIFICATION_DETECTED)
                return False, old
            os.unlink(name, dir_fd=pfd)
            return True, None
        if kind == Kind.DIRECTORY or kind == Kind.PHANTOM:
            try:
                dfd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            except FileNotFoundError:
                return True, None
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    self.report(path, MODIFICATION_DETECTED)
                    return False, old if kind == Kind.DIRECTORY else None
                raise
            remaining: dict[str, Entry] = {}
            try:
                for child_name, child in old.contents.items():
                    if child.kind not in _TRACKED and child.kind != Kind.PHANTOM:
                        continue  # untracked or problematic: never removed
                    child_path = join(path, child_name)
                    try:
                        removed, left = self.remove(dfd, child_name, child_path, child)
                    except OSError as error:
                        self.report(child_path, _os_problem("unable to remove", error))
                        removed, left = False, child if child.kind in _TRACKED else None
                    if not removed and left is not None:
                        remaining[child_name] = left
                leftover = [item for item in os.listdir(dfd) if not _removed_own_temporary(dfd, item)]
            finally:
                os.close(dfd)
            if leftover:
                if any(item not in remaining for item in leftover):
                    self.report(path, UNKNOWN_CONTENT)
                return False, Entry(Kind.DIRECTORY, remaining)
            try:
                os.rmdir(name, dir_fd=pfd)
            except OSError as error:
                if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    self.report(path, UNKNOWN_CONTENT)
                    return False, Entry(Kind.DIRECTORY, remaining)
                raise
            return True, None
        # Untracked or problematic content is never removed.
        self.report(path, UNKNOWN_CONTENT)
        return False, None

    # -- staged content -------------------------------------------------------------------------

    def place(self, pfd: int, path: str, new: Entry, building: bool = False) -> Optional["_Placed"]:
        """Make the staged content of ``new`` ready to take its name in directory ``pfd``: final
        mode and ownership set, content verified against the digest. None (and a problem) if
        not. When this is the digest's last use and the staging store is on the directory's
        filesystem, the staged file itself is prepared (it then moves into place with one
        rename); otherwise a copy (or the moved file) under a temporary name in ``pfd``.
        ``building`` (``pfd`` is being built, ``create``): the staged file is named relative to
        the open store directory when there is one (no path resolution of the store)."""
        digest = new.digest
        try:
            relative = self.staging.relative_name(digest)
        except ValueError as error:
            self.report(path, str(error))
            return None
        expected = self.staging.verified_size(digest)
        store = self.store_fd
        staged = None
        if self.tree_fd is not None:
            found = self.staging.record(digest)
            if found is not None and found[1]:
                # Placed on arrival: used only from the path it was placed for (its record's
                # key); at another path of this plan it is looked up by that key. Named
                # relative to the open tree (which may be the root being built: ``build_root``).
                where = path if found[1] == self.staging.path_key(path) else \
                    self.tree_path(found[1])
                if where is not None:
                    relative = where
                    staged = self.tree_prefix + where
                    store = self.tree_fd
                    expected = found[0]
        if staged is None:
            staged = self.staging_prefix + relative  # == self.staging.path_for(digest)
        self.uses[digest] -= 1
        last = self.uses[digest] <= 0
        if last and self.staging_device is not None and self._device(pfd) == self.staging_device:
            if not building:
                store = None
            name = staged if store is None else relative
            try:
                if expected is not None:
                    # Verified when it took its name (actors.sync.staging): one lstat checks the
                    # size; the file is opened only when its mode or owner must change.
                    st = os.stat(name, dir_fd=store, follow_symlinks=False)
                    if not self.ready(st, new, expected):
                        st = self.prepare(name, store, new, expected)
                else:
                    st = self.prepare(name, store, new, None)
            except FileNotFoundError:
                self.missing_staged = True
                self.report(path, STAGED_MISSING)
                return None
            if st is None:
                _unlink_path_quietly(staged)  # damaged: the next cycle fetches it again
                self.report(path, STAGED_MISMATCH)
                return None
            return _Placed(store, name, st, staged)
        return self.via_temporary(pfd, path, new, staged, last, expected)

    def via_temporary(self, pfd: int, path: str, new: Entry, staged: str,
                      last: bool, expected: object = _UNSET) -> Optional["_Placed"]:
        """``place`` through a temporary name in ``pfd``: the staged file moved there when it is
        the last use (and a rename can reach ``pfd``), else copied; then mode, owner, verify.
        ``expected``: the verified size of ``staged`` (default: ``Staging.verified_size``; None:
        hash it)."""
        if expected is _UNSET:
            expected = self.staging.verified_size(new.digest)
        temporary = f"{_OWN_TEMPORARY}{self.token}{next(self.serial)}"
        moved = False
        if last:
            try:
                os.rename(staged, temporary, dst_dir_fd=pfd)
                moved = True
            except FileNotFoundError:
                self.missing_staged = True
                self.report(path, STAGED_MISSING)
                return None
            except OSError as error:
                if error.errno != errno.EXDEV:
                    raise
        if not moved:
            try:
                source = os.open(staged, _READ_FLAGS)
            except FileNotFoundError:
                self.missing_staged = True
                self.report(path, STAGED_MISSING)
                return None
            try:
                _copy_into(source, pfd, temporary)
            finally:
                os.close(source)
        try:
            st = self.prepare(temporary, pfd, new, expected)
        except BaseException:
            _unlink_quietly(pfd, temporary)
            raise
        if st is None:
            _unlink_quietly(pfd, temporary)
            if not moved:
                _unlink_path_quietly(staged)  # damaged: the next cycle fetches it again
            self.report(path, STAGED_MISMATCH)
            return None
        return _Placed(pfd, temporary, st)

    def ready(self, st: os.stat_result, new: Entry, expected: int) -> bool:
        """Whether a staged file with lstat ``st``, verified with ``expected`` bytes, can take
        its name as it is: the right size (else ``prepare`` refuses it) and already the final
        mode, no owner or group to set."""
        return (st.st_size == expected and _stat.S_ISREG(st.st_mode)
                and _stat.S_IMODE(st.st_mode) == self.file_modes[new.executable]
                and self.uid == -1 and self.gid == -1)

    def prepare(self, name: str, dir_fd: Optional[int], new: Entry,
                expected: Optional[int]) -> Optional[os.stat_result]:
        """Open file ``name`` (relative to ``dir_fd``, None: a path) and ``finish`` it."""
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
        try:
            return self.finish(fd, new, expected)
        finally:
            os.close(fd)

    def finish(self, fd: int, new: Entry, expected: Optional[int]) -> Optional[os.stat_result]:
        """Check the open file's content, then give it its final mode (and owner): its stat
        afterwards, or None if the content is not ``new``'s. ``expected``: the size the staging
        store verified under the digest's name (``Staging.verified_size``; a copy of such a
        file has it too): only the size is checked. None (a file staged by an earlier process):
        the content is hashed and compared with ``new.digest``."""
        st = os.fstat(fd)
        if not _stat.S_ISREG(st.st_mode):
            return None
        if expected is not None:
            if st.st_size != expected:
                return None
        else:
            actual, read = hash_fd(fd, self.algorithm, st.st_size)
            if actual != new.digest or read != st.st_size:
                return None
        mode = self.file_modes[new.executable]
        if _stat.S_IMODE(st.st_mode) != mode or self.uid != -1 or self.gid != -1:
            os.fchmod(fd, mode)
            if self.uid != -1 or self.gid != -1:
                os.fchown(fd, self.uid, self.gid)
            st = os.fstat(fd)
        return st

    # -- creation -------------------------------------------------------------------------------

    def create(self, pfd: int, name: str, path: str, new: Entry, building: bool = False) -> Optional[Entry]:
        """Create ``new`` where nothing is; returns what was created (or None). ``building``:
        ``pfd`` is a directory being built under a temporary name (``build_directory``)."""
        kind = new.kind
        if kind == Kind.FILE:
            placed = self.place(pfd, path, new, building)
            if placed is None:
                return None
            # In a directory being built nothing but this transition's own names can be there:
            # a plain rename (cheaper than renameat2 through ctypes) cannot replace anyone's.
            move = _move_into_built if building else _move_no_replace
            try:
                try:
                    done = move(placed.dir_fd, placed.name, pfd, name)
                except OSError as error:
                    if error.errno != errno.EXDEV or placed.staged is None:
                        raise
                    # Same filesystem, another mount (a bind-mounted root): copy it in instead.
                    placed = self.via_temporary(pfd, path, new, placed.staged, last=False)
                    if placed is None:
                        return None
                    done = move(placed.dir_fd, placed.name, pfd, name)
                if not done:
                    self.report(path, MODIFICATION_DETECTED)
                    return None
            finally:
                if placed is not None and placed.staged is None:
                    _unlink_quietly(pfd, placed.name)
            # The stat taken before the move: a rename keeps inode, size, mtime and mode.
            self.cache.put_stat(path, placed.stat, new.digest)
            return new
        if kind == Kind.SYMLINK:
            if self.symlink_mode is SymlinkMode.IGNORE:
                self.report(path, "symbolic links are ignored on this endpoint")
                return None
            text = symlink_problem(new.target, path, self.symlink_mode)
            if text:
                self.report(path, f"symbolic link was not in normalized form or was not portable: {text}")
                return None
            try:
                os.symlink(new.target, name, dir_fd=pfd)
            except FileExistsError:
                self.report(path, MODIFICATION_DETECTED)
                return None
            if self.uid != -1 or self.gid != -1:
                os.chown(name, self.uid, self.gid, dir_fd=pfd, follow_symlinks=False)
            return new
        if kind == Kind.DIRECTORY:
            if not path:
                built = self.build_root(pfd, name, new)
                if built is not _UNSET:
                    return built
            if building or not path:
                try:
                    os.mkdir(name, self.directory_mode, dir_fd=pfd)
                except FileExistsError:
                    self.report(path, MODIFICATION_DETECTED)
                    return None
                return self.fill(pfd, name, path, new)
            return self.build_directory(pfd, name, path, new)
        # Untracked, problematic or phantom content is never created.
        return None

    def fill(self, pfd: int, name: str, path: str, new: Entry) -> Entry:
        """Give the new (empty) directory ``name`` its mode and owner and create ``new``'s
        contents in it; returns what was created."""
        dfd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        try:
            os.fchmod(dfd, self.directory_mode)  # exact mode, whatever the umask
            if self.uid != -1 or self.gid != -1:
                os.fchown(dfd, self.uid, self.gid)
            device = self.devices[dfd] = os.fstat(dfd).st_dev  # once, not once per file placed
            if (self.fast_build and self.store_fd is not None and device == self.staging_device
                    and self.uid == -1 and self.gid == -1):
                created = self.fill_fast(dfd, path, new)
            else:
                created = {}
                for child_name, child in new.contents.items():
                    result = self.create_child(dfd, child_name, path, child)
                    if result is not None:
                        created[child_name] = result
        finally:
            del self.devices[dfd]
            os.close(dfd)
        return Entry(Kind.DIRECTORY, created)

    def create_child(self, dfd: int, name: str, parent: str, child: Entry) -> Optional[Entry]:
        """``create`` one child of a directory being built (``fill``); an OSError is a problem
        for that child's path."""
        child_path = join(parent, name)
        try:
            return self.create(dfd, name, child_path, child, building=True)
        except OSError as error:
            self.report(child_path, _os_problem("unable to create", error))
            return None

    # The building fast path (``fill_fast``); tests switch it off to compare it with the general one.
    fast_build = True

    def fill_fast(self, dfd: int, path: str, new: Entry) -> dict[str, Entry]:
        """``fill``'s loop for a directory being built on the staging store's filesystem, no
        owner or group to set: the common case of an initial sync, kept lean. A child that is a
        file whose content is staged, verified by this process (``verified_size``) and needed
        nowhere else in this transition is checked and placed right here: one ``lstat`` of the
        staged file (relative to the open store), its size and mode compared (a mode that differs
        goes through ``prepare``), one plain ``rename`` into the directory (its names are this
        transition's own), and its cache record written with the others of the directory
        (``DigestCache.put_stats``, the clock read before the first rename: a record is racy at
        least as often as ``put_stat`` would make it). Everything else, and any file that does
        not pass (missing, wrong size, any OSError), goes through ``create_child`` untouched, so
        problems, results and records are the general path's (``tests/sync/
        test_transition_fast_build.py`` compares both)."""
        created: dict[str, Entry] = {}
        placed: list[tuple[str, os.stat_result, bytes]] = []
        store = self.store_fd
        uses = self.uses
        verified_size = self.staging.verified_size
        digest_size = DIGEST_SIZES[self.staging.algorithm]
        modes = {executable: _stat.S_IFREG | mode for executable, mode in self.file_modes.items()}
        FILE = Kind.FILE
        lstat, rename = os.stat, os.rename
        now = time.time_ns()
        try:
            for name, child in new.contents.items():
                if child.kind is FILE:
                    digest = child.digest
                    if (type(digest) is bytes and len(digest) == digest_size
                            and uses[digest] <= 1):
                        expected = verified_size(digest)
                        if expected is not None:
                            hexed = digest.hex()
                            relative = f"{hexed[:2]}/{hexed}"
                            try:
                                st = lstat(relative, dir_fd=store, follow_symlinks=False)
                                if st.st_size != expected or st.st_mode != modes[child.executable]:
                                    st = self.prepare(relative, store, child, expected)
                                if st is not None:
                                    rename(relative, name, src_dir_fd=store, dst_dir_fd=dfd)
                            except OSError:
                                st = None  # the general path meets it again and reports it
                            if st is not None:
                                uses[digest] -= 1
                                placed.append((name, st, digest))
                                created[name] = child
                                continue
                result = self.create_child(dfd, name, path, child)
                if result is not None:
                    created[name] = result
        finally:
            self.cache.put_stats(path, placed, now)
        return created

    def build_directory(self, pfd: int, name: str, path: str, new: Entry) -> Optional[Entry]:
        """A new directory below the root: built whole under a temporary name in ``pfd`` (which
        scans and watchers skip), then given its name with one rename that never replaces.
        Readers see no directory or the complete one; the watcher gets one event for the whole
        subtree instead of one per entry. A name that appeared meanwhile is left alone (the
        subtree built is removed, its records dropped); a crash leaves a temporary directory
        that the removal of its parent deletes (``_removed_own_temporary``)."""
        try:
            os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            self.report(path, MODIFICATION_DETECTED)
            return None
        parent = path.rpartition("/")[0]
        if parent not in self.cleaned:
            self.cleaned.add(parent)
            _remove_leftover_builds(pfd, self.token)
        temporary = f"{_OWN_BUILD}{os.getpid()}-{self.token}{next(self.serial)}"
        adopted = self.adopt(pfd, path, temporary)
        if not adopted:
            os.mkdir(temporary, self.directory_mode, dir_fd=pfd)
        try:
            if adopted:
                created = self.complete(pfd, temporary, path, new)
            else:
                created = self.fill(pfd, temporary, path, new)
            moved = _move_no_replace(pfd, temporary, pfd, name)
        except BaseException:
            _remove_tree_quietly(pfd, temporary)
            self.forget(path, new)
            raise
        if not moved:
            _remove_tree_quietly(pfd, temporary)
            self.forget(path, created)
            self.report(path, MODIFICATION_DETECTED)
            return None
        return created

    # -- the root built from the store's tree -----------------------------------------------------

    def build_root(self, pfd: int, name: str, new: Entry):
        """Create the root ``name`` in its parent ``pfd`` from the store's whole tree when it
        holds placed content: the tree is renamed next to the root under a temporary name
        (``_root_build_name``: the builder's process id and a tag of the root's name), checked
        and completed as an adopted directory (``complete``), then given the root's name with a
        rename that never replaces. Returns what was created (None: a root that appeared
        meanwhile, reported as "modification detected", nothing of it touched, the build put
        back as the store's tree, else removed), or ``_UNSET`` when the tree cannot be adopted
        (nothing placed, the store inside the root, another filesystem, any OSError before the
        rename): the caller then makes the root in place as before. A crash leaves only the
        temporary name, which the first transition of a later process on this root removes
        (``_remove_root_leftovers``). Afterwards the tree is gone from the store (the next
        ``open_tree`` makes it again) and this transition uses nothing placed."""
        if self.tree_fd is None or self.store_in_root:
            return _UNSET
        try:
            with os.scandir(self.tree_fd) as items:
                if next(items, None) is None:
                    return _UNSET  # nothing placed
            os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            pass
        except OSError:
            return _UNSET
        else:
            self.report("", MODIFICATION_DETECTED)
            return None
        temporary = _root_build_name(name, self.token, next(self.serial))
        try:
            _adopt_rename(self.store_fd, TREE, pfd, temporary)
        except OSError:
            return _UNSET
        parent = os.path.dirname(os.path.abspath(self.root))
        self.tree_prefix = os.path.join(parent, temporary, "")
        try:
            created = self.complete(pfd, temporary, "", new)
            moved = _move_no_replace(pfd, temporary, pfd, name)
        except BaseException:
            self.forget("", new)
            self.restore_tree(pfd, temporary)
            raise
        if not moved:
            self.forget("", created)
            self.restore_tree(pfd, temporary)
            self.report("", MODIFICATION_DETECTED)
            return None
        # The tree's descriptor is the root's now: nothing placed is used from here on.
        os.close(self.tree_fd)
        self.tree_fd = None
        self.tree_index = {}
        self.tree_prefix = os.path.join(self.staging.directory, TREE, "")
        return created

    def restore_tree(self, pfd: int, temporary: str) -> None:
        """Put a root build that did not take the root's name back as the store's tree (its
        content sorted by the next ``StageBegin``, ``Staging.settle_tree``, or wiped with the
        store), else remove it. Never raises."""
        self.tree_prefix = os.path.join(self.staging.directory, TREE, "")
        self.tree_index = None
        try:
            if _move_no_replace(pfd, temporary, self.store_fd, TREE):
                return
        except OSError:
            pass
        _remove_tree_quietly(pfd, temporary)
        if self.tree_fd is not None:
            os.close(self.tree_fd)
            self.tree_fd = None

    # -- adoption of placed directories ---------------------------------------------------------

    def adopt(self, pfd: int, path: str, temporary: str) -> bool:
        """Move the store's tree directory at ``path`` (content placed on arrival, see
        ``agent.transfer``) to ``temporary`` in ``pfd`` as the directory being built: whether
        it was moved. Not moved (nothing placed there, not a directory, another filesystem,
        any OSError): the directory is built as usual and its files found one by one."""
        if self.tree_fd is None:
            return False
        try:
            components = split_path(path)
            parent = open_directory(self.tree_fd, components[:-1])
        except (OSError, ValueError):
            return False
        try:
            st = os.stat(components[-1], dir_fd=parent, follow_symlinks=False)
            if not _stat.S_ISDIR(st.st_mode):
                return False
            _adopt_rename(parent, components[-1], pfd, temporary)
            return True
        except OSError:
            return False
        finally:
            os.close(parent)

    def complete(self, pfd: int, name: str, path: str, new: Entry) -> Entry:
        """``fill`` for the adopted directory ``name`` (``adopt``): its mode and owner set, then
        its contents checked and completed (``complete_contents``); returns what was created."""
        dfd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        try:
            return self.complete_open(dfd, path, new)
        finally:
            os.close(dfd)

    def complete_open(self, dfd: int, path: str, new: Entry) -> Entry:
        """``complete`` for the adopted directory open as ``dfd`` (the caller closes it)."""
        st = os.fstat(dfd)
        if _stat.S_IMODE(st.st_mode) != self.directory_mode:
            os.fchmod(dfd, self.directory_mode)
        if self.uid != -1 or self.gid != -1:
            os.fchown(dfd, self.uid, self.gid)
        self.devices[dfd] = st.st_dev
        try:
            return Entry(Kind.DIRECTORY, self.complete_contents(dfd, path, new))
        finally:
            del self.devices[dfd]

    def complete_contents(self, dfd: int, path: str, new: Entry) -> dict[str, Entry]:
        """The children of an adopted directory: one listing of what came along, then for each
        planned child: a file placed for exactly this (path, digest) is kept after one
        ``lstat`` (``keep_placed``), a subdirectory that came along is completed the same way,
        anything else there is moved out of the way (``evacuate``) and the child goes through
        the general path (``create_child``), so results, problems and cache records are those of
        ``fill``. Names the plan does not have are evacuated before the directory takes its
        final name."""
        present = set(os.listdir(dfd))
        created: dict[str, Entry] = {}
        placed: list[tuple[str, os.stat_result, bytes]] = []
        placed_size = self.staging.placed_lookup()
        digest_size = DIGEST_SIZES[self.staging.algorithm]
        uses = self.uses
        # Kept as they are: the final mode already, no owner or group to set (``ready``).
        modes = {executable: _stat.S_IFREG | mode for executable, mode in self.file_modes.items()} \
            if self.uid == -1 and self.gid == -1 else {}
        FILE, DIRECTORY = Kind.FILE, Kind.DIRECTORY
        lstat = os.stat
        prefix = f"{path}/" if path else ""
        now = time.time_ns()
        try:
            for name, child in new.contents.items():
                if name in present:
                    present.discard(name)
                    kind = child.kind
                    child_path = prefix + name
                    if kind is FILE:
                        digest = child.digest
                        expected = placed_size(digest, path_key(child_path)) \
                            if type(digest) is bytes and len(digest) == digest_size else None
                        if expected is not None:
                            if uses[digest] <= 1:
                                # The common case, lean: one lstat, kept as it is.
                                try:
                                    st = lstat(name, dir_fd=dfd, follow_symlinks=False)
                                except OSError:
                                    st = None
                                if (st is not None and st.st_size == expected
                                        and st.st_mode == modes.get(child.executable)):
                                    uses[digest] -= 1
                                    placed.append((name, st, digest))
                                    created[name] = child
                                    continue
                            st = self.keep_placed(dfd, name, child_path, child, expected)
                            if st is not None:
                                if st is not False:
                                    placed.append((name, st, digest))
                                    created[name] = child
                                continue
                        else:
                            self.evacuate(dfd, name)
                    elif kind is DIRECTORY:
                        try:
                            sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
                        except OSError:
                            sub = -1
                            self.evacuate(dfd, name)  # not a directory
                        if sub >= 0:
                            try:
                                created[name] = self.complete_open(sub, child_path, child)
                            except OSError as error:
                                self.report(child_path, _os_problem("unable to create", error))
                            finally:
                                os.close(sub)
                            continue
                    else:
                        self.evacuate(dfd, name)
                result = self.create_child(dfd, name, path, child)
                if result is not None:
                    created[name] = result
            for name in present:
                self.evacuate(dfd, name)
        finally:
            self.cache.put_stats(path, placed, now)
        return created

    def keep_placed(self, dfd: int, name: str, path: str, new: Entry, expected: int):
        """A file of an adopted directory placed for exactly (``path``, ``new.digest``), with
        ``expected`` verified bytes: checked as ``place`` checks a staged file (one ``lstat``;
        ``prepare`` when its size or mode is not the final one). Returns its stat when it is
        kept, False when it was refused (removed, the problem reported as ``place`` reports
        it), None when the content is needed again in this transition: it is then moved into
        the store under its digest and the caller takes the general path."""
        digest = new.digest
        if self.uses[digest] > 1:
            try:
                self.staging.move_in(self.store_fd, dfd, name, digest, expected)
            except OSError:
                _unlink_quietly(dfd, name)
            return None
        self.uses[digest] -= 1
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if not self.ready(st, new, expected):
                st = self.prepare(name, dfd, new, expected)
        except FileNotFoundError:
            self.missing_staged = True
            self.report(path, STAGED_MISSING)
            return False
        except OSError as error:
            self.evacuate(dfd, name)
            self.report(path, _os_problem("unable to create", error))
            return False
        if st is None:
            self.evacuate(dfd, name)  # damaged: the next cycle fetches it again
            self.report(path, STAGED_MISMATCH)
            return False
        return st

    def evacuate(self, dfd: int, name: str) -> None:
        """Take ``name`` out of an adopted directory: a regular file whose content (hashed
        now) is still needed in this transition goes into the store under its digest, where
        ``place`` finds it; a directory is emptied the same way and removed; anything else is
        removed. Never raises."""
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except OSError:
            return
        if _stat.S_ISDIR(st.st_mode):
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
                try:
                    for child in os.listdir(sub):
                        self.evacuate(sub, child)
                finally:
                    os.close(sub)
                os.rmdir(name, dir_fd=dfd)
            except OSError:
                _remove_tree_quietly(dfd, name)
            return
        if _stat.S_ISREG(st.st_mode) and self.store_fd is not None:
            try:
                fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
                try:
                    digest, read = hash_fd(fd, self.algorithm, st.st_size)
                finally:
                    os.close(fd)
                if read == st.st_size and self.uses.get(digest, 0) > 0:
                    self.staging.move_in(self.store_fd, dfd, name, digest, read)
                    return
            except OSError:
                pass
        _unlink_quietly(dfd, name)

    def tree_path(self, key: int) -> Optional[str]:
        """The path in the store's tree whose ``Staging.path_key`` is ``key`` (content placed
        for one path that this plan wants at another), or None. The tree's files are listed
        once per transition, the first time this is asked."""
        if self.tree_index is None:
            index: dict[int, str] = {}
            path_key = self.staging.path_key
            pending = [("", os.dup(self.tree_fd))]
            while pending:
                prefix, fd = pending.pop()
                try:
                    with os.scandir(fd) as entries:
                        for entry in entries:
                            path = prefix + entry.name
                            if entry.is_dir(follow_symlinks=False):
                                try:
                                    pending.append((path + "/", os.open(entry.name, _DIR_FLAGS,
                                                                        dir_fd=fd)))
                                except OSError:
                                    pass
                            else:
                                index[path_key(path)] = path
                except OSError:
                    pass
                finally:
                    os.close(fd)
            self.tree_index = index
        return self.tree_index.get(key)

    def forget(self, path: str, entry: Entry) -> None:
        """Drop the cache records of the files of a subtree that never took its name."""
        for child_path, child in walk(entry, path):
            if child.kind == Kind.FILE:
                self.cache.discard(child_path)

    # -- changes --------------------------------------------------------------------------------

    def swap_file(self, pfd: int, name: str, path: str, old: Entry, new: Entry) -> Optional[Entry]:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            self.report(path, MODIFICATION_DETECTED)  # deleted since the scan: keep the deletion
            self.cache.discard(path)
            return None
        if not self.file_unchanged(pfd, name, path, st, old):
            self.report(path, MODIFICATION_DETECTED)
            return old
        if old.digest == new.digest:
            if old.executable == new.executable or not self.portable:
                return new
            fd = os.open(name, _READ_FLAGS, dir_fd=pfd)
            try:
                opened = os.fstat(fd)
                if opened.st_ino != st.st_ino:
                    self.report(path, MODIFICATION_DETECTED)
                    return old
                os.fchmod(fd, _stat.S_IMODE(with_executability(opened.st_mode, new.executable)))
                self.cache.put_stat(path, os.fstat(fd), new.digest)
            finally:
                os.close(fd)
            return new
        placed = self.place(pfd, path, new)
        if placed is None:
            return old
        try:
            for attempt in (1, 2):
                again = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if _identity(again) != _identity(st):
                    self.report(path, MODIFICATION_DETECTED)
                    return old
                try:
                    os.rename(placed.name, name, src_dir_fd=placed.dir_fd, dst_dir_fd=pfd)
                    break
                except OSError as error:
                    if attempt == 2 or error.errno != errno.EXDEV or placed.staged is None:
                        raise
                # Same filesystem, another mount (a bind-mounted root): copy it in instead.
                placed = self.via_temporary(pfd, path, new, placed.staged, last=False)
                if placed is None:
                    return old
        finally:
            if placed is not None and placed.staged is None:
                _unlink_quietly(pfd, placed.name)
        self.cache.put_stat(path, placed.stat, new.digest)
        return new

    def apply(self, pfd: int, name: str, path: str, old: Optional[Entry], new: Optional[Entry]) -> Optional[Entry]:
        """Apply one change below ``pfd``; returns the entry that exists afterwards."""
        if old is not None and new is not None:
            if old.kind == Kind.FILE and new.kind == Kind.FILE:
                return self.swap_file(pfd, name, path, old, new)
            if old.kind == Kind.DIRECTORY and new.kind == Kind.DIRECTORY:
                return self.merge_directory(pfd, name, path, old, new)
        if old is not None:
            removed, remaining = self.remove(pfd, name, path, old)
            if not removed:
                return remaining
        if new is None:
            return None
        return self.create(pfd, name, path, new)

    def merge_directory(self, pfd, name, path, old: Entry, new: Entry) -> Optional[Entry]:
        """Directory to directory: apply the differences child by child."""
        try:
            dfd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        except OSError:
            self.report(path, MODIFICATION_DETECTED)
            return old
        result: dict[str, Entry] = {}
        try:
            for child_name in list(old.contents) + [n for n in new.contents if n not in old.contents]:
                before = old.contents.get(child_name)
                after = new.contents.get(child_name)
                child_path = join(path, child_name)
                if before == after:
                    actual = before
                else:
                    try:
                        actual = self.apply(dfd, child_name, child_path, before, after)
                    except OSError as error:
                        self.report(child_path, _os_problem("unable to apply change", error))
                        actual = before
                if actual is not None and actual.kind in _TRACKED:
                    result[child_name] = actual
        finally:
            os.close(dfd)
        return Entry(Kind.DIRECTORY, result)


def _removed_own_temporary(dfd: int, name: str) -> bool:
    """Delete ``name`` if it is a regular file or a directory (a build) left behind by an
    interrupted transition. A build of another live process is not touched."""
    if not name.startswith(_OWN_TEMPORARY):
        return False
    try:
        mode = os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode
        if _stat.S_ISDIR(mode):
            if not _leftover_build(name, ""):  # this process: never building in what it removes
                return False
            _remove_tree(dfd, name)
        elif _stat.S_ISREG(mode):
            os.unlink(name, dir_fd=dfd)
        else:
            return False
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _remove_leftover_builds(dfd: int, token: str) -> None:
    """Remove the directories in ``dfd`` that an interrupted build left (``_OWN_BUILD`` names
    of a process that is gone, or of this process but an earlier transition). A build of a
    live process (another session on the same root) is left alone. Never raises."""
    try:
        with os.scandir(dfd) as items:
            names = [item.name for item in items if item.name.startswith(_OWN_BUILD)]
    except OSError:
        return
    for name in names:
        if _leftover_build(name, token):
            _remove_tree_quietly(dfd, name)


def _leftover_build(name: str, token: str, pid: Optional[int] = None) -> bool:
    """Whether build directory ``name`` (``_OWN_BUILD`` + ``<pid>-<token><serial>``) is a
    leftover for a transition of this process (``pid``, default ours) using ``token`` (empty:
    any build of this process is one)."""
    owner, _, rest = name[len(_OWN_BUILD):].partition("-")
    if not owner.isdigit() or not rest:
        return False  # not a name this module makes: never touched here
    owner_pid = int(owner)
    if owner_pid == (os.getpid() if pid is None else pid):
        return not token or not rest.startswith(token)
    try:
        os.kill(owner_pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # it exists (another user's, or not ours to signal)
    return False


def _remove_tree(dfd: int, name: str) -> None:
    """Remove directory ``name`` in ``dfd`` and everything below it, through directory
    descriptors (never following a symbolic link). OSError propagates."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
    try:
        with os.scandir(fd) as items:
            children = [(item.name, item.is_dir(follow_symlinks=False)) for item in items]
        for child, is_dir in children:
            if is_dir:
                _remove_tree(fd, child)
            else:
                os.unlink(child, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dfd)


def _remove_tree_quietly(dfd: int, name: str) -> None:
    try:
        _remove_tree(dfd, name)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("unable to remove temporary directory", name=name, error=str(error))


def _identity(st: os.stat_result) -> tuple:
    return (st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


def _os_problem(what: str, error: OSError) -> str:
    return f"{what}: {error.strerror or error}"


def _unlink_quietly(dfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dfd)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("unable to remove temporary file", name=name, error=str(error))


def _copy_into(source: int, dfd: int, name: str) -> None:
    target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
    try:
        while True:
            block = os.read(source, _COPY_BLOCK)
            if not block:
                break
            view = memoryview(block)
            while view:
                view = view[os.write(target, view):]
    except BaseException:
        os.close(target)
        _unlink_quietly(dfd, name)
        raise
    os.close(target)


def _device_of(path: str) -> Optional[int]:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    _renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                           ctypes.c_uint)
    _renameat2.restype = ctypes.c_int
except (AttributeError, OSError):  # not glibc >= 2.28 / not Linux
    _renameat2 = None


def _move_no_replace(src_dir_fd: Optional[int], source: str, dfd: int, name: str) -> bool:
    """Move ``source`` (relative to ``src_dir_fd``, or a path) to ``name`` in ``dfd`` unless
    ``name`` exists (False then, ``source`` left as it was). One ``renameat2(RENAME_NOREPLACE)``
    where the kernel and filesystem have it, else a hard link (which never replaces) and an
    unlink of the source."""
    global _renameat2
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD if src_dir_fd is None else src_dir_fd, os.fsencode(source),
                      dfd, os.fsencode(name), _RENAME_NOREPLACE) == 0:
            return True
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            return False
        if code in (errno.ENOSYS,):
            _renameat2 = None  # this kernel has no renameat2: stop trying
        elif code not in (errno.EINVAL, errno.EOPNOTSUPP):  # EINVAL: this filesystem lacks the flag
            raise OSError(code, os.strerror(code), name)
    if src_dir_fd is not None:
        return _link_no_replace(dfd, source, name)  # the caller removes the temporary
    if not _link_no_replace(dfd, source, name, src_dir_fd=None):
        return False
    _unlink_path_quietly(source)  # still there after a hard link
    return True


def _adopt_rename(src_dir_fd: int, source: str, dfd: int, name: str) -> None:
    """Move a directory of the store's tree to ``name`` in ``dfd`` (``_Transition.adopt``);
    OSError (EXDEV from a mount in between, ...) when it cannot."""
    os.rename(source, name, src_dir_fd=src_dir_fd, dst_dir_fd=dfd)


def _move_into_built(src_dir_fd: Optional[int], source: str, dfd: int, name: str) -> bool:
    """``_move_no_replace`` into a directory this transition is building under its own temporary
    name (``build_directory``): one plain rename."""
    os.rename(source, name, src_dir_fd=src_dir_fd, dst_dir_fd=dfd)
    return True


def _unlink_path_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        log.warning("unable to remove staged file", path=path, error=str(error))


_SAME = object()


def _link_no_replace(dfd: int, source: str, name: str, *, src_dir_fd=_SAME) -> bool:
    """Give ``source`` (relative to ``src_dir_fd``, by default ``dfd``; None: a path) the name
    ``name`` in ``dfd`` unless ``name`` exists (False then)."""
    src_dir_fd = dfd if src_dir_fd is _SAME else src_dir_fd
    try:
        os.link(source, name, src_dir_fd=src_dir_fd, dst_dir_fd=dfd, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
    # A filesystem without hard links: check, then rename (a tiny window remains).
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=False)
        return False
    except FileNotFoundError:
        os.rename(source, name, src_dir_fd=src_dir_fd, dst_dir_fd=dfd)
        return True


def transition(
    root: str,
    changes: list[Change],
    *,
    cache: DigestCache,
    staging: Staging,
    hash: HashAlgorithm = HashAlgorithm.XXH128,
    symlink_mode: SymlinkMode = SymlinkMode.PORTABLE,
    permissions_mode: PermissionsMode = PermissionsMode.PORTABLE,
    default_file_mode: int = DEFAULT_FILE_MODE,
    default_directory_mode: int = DEFAULT_DIRECTORY_MODE,
    default_owner: Union[int, str, None] = None,
    default_group: Union[int, str, None] = None,
    logger=None,
) -> TransitionResult:
    """Apply ``changes`` below ``root`` (see the module docstring for the rules).

    ``logger``: a structlog logger bound with ``session``, ``actor`` and ``side`` (problems are
    logged there); the module's logger otherwise."""
    uses: Counter = Counter()
    for change in changes:
        _count_digests(change.new, uses)
    state = _Transition(
        root, cache, staging, hash, symlink_mode, permissions_mode, default_file_mode,
        default_directory_mode, _resolve_id(default_owner, "owner"), _resolve_id(default_group, "group"), uses,
        logger or log,
    )
    results: list[Change] = []
    root_fd: Optional[int] = None
    absolute = os.path.abspath(root)
    if absolute not in _ROOTS_CLEANED:
        _ROOTS_CLEANED.add(absolute)
        _remove_root_leftovers(absolute)
    try:
        try:
            state.store_fd = os.open(staging.directory, _DIR_FLAGS)
            state.tree_fd = os.open(TREE, _DIR_FLAGS, dir_fd=state.store_fd)
        except OSError:
            pass  # nothing staged (or not reachable so): staged paths are used as they are
        for change in changes:
            path = change.path
            try:
                components = split_path(path)
            except UnsafePathError as error:
                state.report(str(path), str(error))
                continue
            try:
                if not components:
                    actual = _apply_root(state, root, change)
                    if root_fd is not None:
                        os.close(root_fd)
                        root_fd = None
                else:
                    if root_fd is None:
                        root_fd = _open_root_fd(root)
                    pfd = open_directory(root_fd, components[:-1])
                    try:
                        actual = state.apply(pfd, components[-1], path, change.old, change.new)
                    finally:
                        os.close(pfd)
            except ParentError as error:
                text = PARENT_MISSING if error.errno == errno.ENOENT else f"{error.strerror}: {error.filename}"
                state.report(path, text)
                actual = change.old
            except OSError as error:
                state.report(path, _os_problem("unable to apply change", error))
                actual = change.old
            results.append(Change(path, change.old, actual))
    finally:
        if root_fd is not None:
            os.close(root_fd)
        if state.store_fd is not None:
            os.close(state.store_fd)
        if state.tree_fd is not None:
            os.close(state.tree_fd)
    return TransitionResult(results, state.problems, state.missing_staged)


# Roots whose parent this process has searched for leftover root builds (``_remove_root_leftovers``).
_ROOTS_CLEANED: set[str] = set()


def _root_build_name(name: str, token: str, serial: int) -> str:
    """The temporary name of a root built from the store's tree (``build_root``): a build name
    (``_OWN_BUILD``, the process id, ``token`` and ``serial``) that ends with a tag of the
    root's own ``name`` (so a leftover is recognised as this root's, and the name stays short
    whatever the root's)."""
    return f"{_OWN_BUILD}{os.getpid()}-{token}{serial}{_root_tag(name)}"


def _root_tag(name: str) -> str:
    return "-root-" + hashlib.blake2b(os.fsencode(name), digest_size=8).hexdigest()


def _remove_root_leftovers(root: str) -> None:
    """Remove from the parent of ``root`` (an absolute path) the root builds of ``root`` that an
    interrupted transition left (``_root_build_name``, of a process that is gone): only names
    with this root's tag, never another session's build or anything else. Never raises."""
    parent, name = os.path.split(root)
    tag = _root_tag(name)
    try:
        pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with os.scandir(pfd) as items:
            names = [item.name for item in items
                     if item.name.startswith(_OWN_BUILD) and item.name.endswith(tag)]
    except OSError:
        names = []
    try:
        for leftover in names:
            if _leftover_build(leftover, ""):
                _remove_tree_quietly(pfd, leftover)
    finally:
        os.close(pfd)


def _open_root_fd(root: str) -> int:
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise ParentError(errno.ENOENT, PARENT_MISSING, root) from None
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise ParentError(error.errno, "synchronization root is not a directory", root) from None
        raise


def _apply_root(state: _Transition, root: str, change: Change) -> Optional[Entry]:
    """The root itself changes: operate relative to the root's parent (which may be reached
    through symlinks: only the root's own final component must not be one)."""
    absolute = os.path.abspath(root)
    parent, name = os.path.dirname(absolute), os.path.basename(absolute)
    try:
        pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ParentError(errno.ENOENT, PARENT_MISSING, parent) from None
    try:
        return state.apply(pfd, name, "", change.old, change.new)
    finally:
        os.close(pfd)


def _count_digests(entry: Optional[Entry], uses: Counter) -> None:
    """Add one use per file of ``entry``'s tree to ``uses`` (digest -> files that need it)."""
    if entry is None:
        return
    if entry.kind == Kind.FILE:
        uses[entry.digest] += 1
        return
    get = uses.get
    pending = [entry] if entry.contents else []
    while pending:
        for child in pending.pop().contents.values():
            if child.kind == Kind.FILE:
                digest = child.digest
                uses[digest] = get(digest, 0) + 1
            elif child.contents:
                pending.append(child)
