"""The local staging store: content waiting to be moved into the root, addressed by digest.

Layout: ``<store>/<first 2 hex chars>/<digest hex>``. A file only ever appears under its final name
after its content has been verified against the digest: ``receive`` writes to a temporary name in
the same directory, hashes while writing, and renames only on a match. So whatever ``has`` and
``path_for`` point at is complete and correct, even after a crash mid-write (leftover temporary
names are ignored and removed by ``wipe``). The receiver's whole-file path
(``agent.transfer.Receiver``) writes content it verified in memory under its final name directly;
a crash in the middle of that write can leave it short there, which is why content this object
did not record is hashed before it is trusted (below).

What a name is trusted for (``verified_size``): every way content gets its digest name here (a
whole message verified in memory, pieces and resumes hashed as they are written, delta rebuilds,
copies of local files, ``StagedWriter``) checks the digest *before* the file has that name, and records the
size it verified. The store is private to its user (directories 0700), so the transition takes
such a name for its content and checks only the size (``verified_size`` against an ``lstat``),
as Mutagen does (verification in the staging sink, none at transition). A name this object did
not record (staged by an earlier process: a crash, a restart) has no size to check: the
receiver's ``needs`` hashes it (``verify``) before it counts as staged, and the transition
hashes any other. The record lives until ``discard`` or ``wipe`` (one packed record of the
digest and 8 bytes per staged file, ``_Sizes``, between a ``StageBegin`` and the transition that
empties the store).

Placed content (``<store>/tree/<path>``, ``tree_directory``): the receiver writes a whole file
it verified in memory at its own path in this path-shaped area instead of under its digest's name
(``agent.transfer``: only when the digest occurs once among the ``StageBegin``'s items and the
store is on the root's filesystem), so the transition can rename a whole directory of them into
the root (``actors.sync.transition``, ``adopt``). Such a file is trusted only for the (path,
digest) it was placed for: ``placed`` records the digest, the verified size and a 64-bit key of
the path (``path_key``) in the same packed record (``record``, ``placed_size``); content at
another path, or a record that does not match, is never taken as that file. Names are created
with ``O_EXCL`` (a placed file is never replaced). At each ``StageBegin``, ``settle_tree`` sorts
what an earlier ``StageBegin`` or an earlier process left there: content matching a new item at
its path stays placed, anything else is hashed and moved under the digest its content gives (or
removed), so a crash mid-staging costs only what was not complete. ``wipe`` removes the tree with
the store; scans and watchers never see it (it is inside the store). ``digests`` and the
``<xx>`` listings ignore it.

Staged files are created with ``file_mode`` (the endpoint's mode for a new non-executable file,
default 0600): the directories around them protect the content, and a file that already has its
final mode is moved into place without a ``chmod``.

Resuming (``resume_path``): a file being received is written to ``<digest hex>.resume`` beside
its final name, and kept there when the transfer is cut (stager killed, connection lost, cycle
cancelled), so the next attempt starts after what it holds (``resume_size``). It is never under
the final name and ``digests`` ignores it; it is verified like everything else before it is
renamed to the final name. ``keep_resumes(digests)`` removes the partial files of every other
digest (the target changed); ``wipe`` removes them all.

Failure rules:
- ``StagingError`` (a ``ValueError``): digest mismatch, a file beyond ``max_file_size``, or a
  digest of the wrong length. Nothing is left under the final name.
- OSError from the filesystem propagates (disk full, permissions).

Where the store lives (``staging_directory``): in the daemon's data directory (default), next to
the root (``neighboring``) or inside the root (``internal``); the last two use a
``TEMPORARY_PREFIX`` name so scans never see them and the final rename stays on one filesystem.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import struct
from typing import Iterable, Iterator, Optional

from .hashing import DIGEST_SIZES, hash_fd, new_hasher
from .settings import TEMPORARY_PREFIX, HashAlgorithm, StageMode

_PARTIAL = ".partial-"
_STORE_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_TREE_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KEY_MASK = (1 << 64) - 1
_SIZE_PLACE = struct.Struct("<QQ")  # a record's size and place, after its digest
RESUME_SUFFIX = ".resume"
TREE = "tree"  # the path-shaped area of the store (``Staging.tree_directory``)


def path_key(path: str) -> int:
    """The 64-bit key a placed file's record carries for its path (never 0). Python's string
    hash: keyed per process, which is all a record's life is (``_Sizes``)."""
    return (hash(path) & _KEY_MASK) or 1


class StagingError(ValueError):
    """Content could not be staged (mismatch, too big, bad digest)."""


def staging_directory(mode: StageMode, *, root: str, session: str, side: str, data_directory: str) -> str:
    """The store directory for one session side under the given stage mode."""
    mode = StageMode(mode)
    name = f"{session}-{side}"
    if mode is StageMode.DATA_DIRECTORY:
        return os.path.join(data_directory, "staging", name)
    if mode is StageMode.NEIGHBORING:
        parent = os.path.dirname(os.path.abspath(root))
        return os.path.join(parent, f"{TEMPORARY_PREFIX}staging-{name}")
    return os.path.join(os.path.abspath(root), f"{TEMPORARY_PREFIX}staging-{name}")


class Staging:
    """A content-addressed store of verified files for one session side."""

    def __init__(self, directory: str, algorithm: HashAlgorithm = HashAlgorithm.XXH128, *,
                 max_file_size: int = 0, file_mode: int = 0o600):
        self.directory = directory
        self.algorithm = HashAlgorithm(algorithm)
        self._digest_size = DIGEST_SIZES[self.algorithm]
        self.max_file_size = max_file_size
        self.file_mode = file_mode  # what staged files are created with (less the umask)
        self._sizes = _Sizes(self._digest_size)  # digest -> (size verified, where it is)

    def named(self, digest: bytes, size: int) -> None:
        """Record that ``size`` bytes of content verified against ``digest`` just took the
        digest's name (every writer of the store calls it right after its rename)."""
        if len(digest) == self._digest_size:  # else unrecorded: hashed before it is trusted
            self._sizes.put(digest, size)

    def verify(self, digest: bytes) -> Optional[int]:
        """Hash the file under ``digest``'s name (one staged by an earlier process, which this
        object never recorded): its size, recorded as verified, if the content matches; None
        otherwise, the file then removed (a crash in the middle of writing a whole file leaves
        it short: ``agent.transfer``), or missing. OSError other than a missing file
        propagates."""
        try:
            fd = os.open(self.path_for(digest), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                         | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        try:
            st = os.fstat(fd)
            actual, read = hash_fd(fd, self.algorithm, st.st_size) if stat.S_ISREG(st.st_mode) \
                else (b"", -1)
        finally:
            os.close(fd)
        if actual != digest or read != st.st_size:
            self.discard(digest)
            return None
        self.named(digest, read)
        return read

    # -- placed content (the tree) -----------------------------------------------------------

    path_key = staticmethod(path_key)

    def placed(self, digest: bytes, size: int, path: str) -> None:
        """Record that ``size`` bytes verified against ``digest`` were just written whole at
        ``path`` in the tree (``tree_directory``): trusted for that (path, digest) only."""
        if len(digest) == self._digest_size:
            self._sizes.put(digest, size, (hash(path) & _KEY_MASK) or 1)  # path_key, inline

    def record(self, digest: bytes) -> Optional[tuple[int, int]]:
        """``(verified size, place)`` of ``digest``'s content as this object last recorded it:
        ``place`` 0 for content under the digest's name, else the ``path_key`` of the path in
        the tree it was placed at. None if nothing was recorded (or a bad digest)."""
        if type(digest) is not bytes or len(digest) != self._digest_size:
            return None
        return self._sizes.record(digest)

    def placed_size(self, digest: bytes, path: str) -> Optional[int]:
        """The verified size of the content placed for exactly (``path``, ``digest``), or None."""
        if type(digest) is not bytes or len(digest) != self._digest_size:
            return None
        return self._sizes.placed(digest, self.path_key(path))

    def placed_lookup(self):
        """``placed_size`` for a loop over many files: a function ``(digest, path key) ->
        verified size or None`` that does not check the digest's type or length (the caller
        does) and takes the path's key (``path_key``) instead of the path."""
        return self._sizes.placed

    @property
    def tree_directory(self) -> str:
        """The path-shaped area of the store: ``<store>/tree/<path>``."""
        return os.path.join(self.directory, TREE)

    def open_tree(self) -> int:
        """A descriptor of the tree directory (created, 0700, with the store if missing). The
        caller closes it, and must not keep it across a ``wipe``."""
        try:
            return os.open(self.tree_directory, _TREE_FLAGS)
        except FileNotFoundError:
            os.makedirs(self.tree_directory, mode=0o700, exist_ok=True)
            return os.open(self.tree_directory, _TREE_FLAGS)

    def settle_tree(self, items: Iterable[tuple[str, bytes]]) -> set[str]:
        """Sort what an earlier ``StageBegin`` or an earlier process left in the tree, against
        the new ``items`` (``(path, digest)`` of the content that may stay placed): a file at
        an item's path whose content is the item's digest stays placed (recorded; content this
        object placed itself for that (path, digest), with the size it verified, is not read
        again), any other regular file is hashed and moved into the store under the digest its
        content gives (recorded), or removed if it cannot be read; anything else is removed,
        and directories left empty too. Returns the paths that stay placed. Never raises on a
        single entry (it is removed, or left for ``wipe``)."""
        try:
            tree = os.open(self.tree_directory, _TREE_FLAGS)
        except FileNotFoundError:
            return set()
        except OSError:
            try:
                os.unlink(self.tree_directory)  # not a directory: nothing placed is there
            except OSError:
                pass
            return set()
        kept: set[str] = set()
        try:
            with os.scandir(tree) as entries:
                empty = next(entries, None) is None
            if not empty:
                store = os.open(self.directory, _STORE_FLAGS)
                try:
                    wanted = dict(items)
                    self._settle(tree, store, "", wanted, kept)
                finally:
                    os.close(store)
        finally:
            os.close(tree)
        return kept

    def _settle(self, dfd: int, store: int, prefix: str, wanted: dict, kept: set) -> None:
        with os.scandir(dfd) as entries:
            listing = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
        for name, is_dir in listing:
            path = prefix + name
            if is_dir:
                try:
                    sub = os.open(name, _TREE_FLAGS, dir_fd=dfd)
                except OSError:
                    continue
                try:
                    self._settle(sub, store, path + "/", wanted, kept)
                finally:
                    os.close(sub)
                try:
                    os.rmdir(name, dir_fd=dfd)
                except OSError:
                    pass  # files below stay placed
                continue
            try:
                self._settle_file(dfd, store, name, path, wanted.get(path), kept)
            except OSError:
                try:
                    os.unlink(name, dir_fd=dfd)
                except OSError:
                    pass

    def _settle_file(self, dfd: int, store: int, name: str, path: str,
                     digest: Optional[bytes], kept: set) -> None:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            os.unlink(name, dir_fd=dfd)
            return
        if digest is not None and self.placed_size(digest, path) == st.st_size:
            kept.add(path)  # placed by this object for this very (path, digest)
            return
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dfd)
        try:
            actual, read = hash_fd(fd, self.algorithm, st.st_size)
        finally:
            os.close(fd)
        if read != st.st_size or len(actual) != self._digest_size:
            os.unlink(name, dir_fd=dfd)
            return
        if actual == digest:
            self.placed(actual, read, path)
            kept.add(path)
            return
        self.move_in(store, dfd, name, actual, read)

    def move_in(self, store: int, dfd: int, name: str, digest: bytes, size: int) -> None:
        """Move ``name`` (in directory ``dfd``), whose ``size`` bytes were just verified against
        ``digest``, into the store (open as ``store``: ``open_store``) under the digest's name,
        and record it (``named``). OSError propagates."""
        text = digest.hex()
        try:
            os.mkdir(text[:2], 0o700, dir_fd=store)
        except FileExistsError:
            pass
        os.rename(name, f"{text[:2]}/{text}", src_dir_fd=dfd, dst_dir_fd=store)
        self.named(digest, size)

    def verified_size(self, digest: bytes) -> Optional[int]:
        """The size of the content this object verified under ``digest``'s name, or None if it
        named none (a file staged by an earlier process: hash it before trusting it) or its
        last record is of content placed in the tree (``record``)."""
        if len(digest) != self._digest_size:
            return None
        return self._sizes.get(digest)

    def _check(self, digest: bytes) -> str:
        if type(digest) is bytes and len(digest) == self._digest_size:  # the common case, fast
            return digest.hex()
        if not isinstance(digest, (bytes, bytearray)) or len(digest) != self._digest_size:
            raise StagingError(f"invalid {self.algorithm.value} digest {digest!r}")
        return bytes(digest).hex()

    def path_for(self, digest: bytes) -> str:
        """Where the verified content for ``digest`` lives (whether or not it is there yet)."""
        text = self._check(digest)
        return os.path.join(self.directory, text[:2], text)

    def relative_name(self, digest: bytes) -> str:
        """``path_for(digest)`` relative to the store directory (``<2 hex>/<hex>``)."""
        text = self._check(digest)
        return f"{text[:2]}/{text}"

    def open_store(self) -> int:
        """A descriptor of the store directory (created, 0700, if missing), for the
        ``*_at``-style calls of a receiver that stages many files: names relative to it
        (``relative_name``) skip resolving the store's whole path per file. The caller closes
        it, and must not keep it across a ``wipe``."""
        try:
            return os.open(self.directory, _STORE_FLAGS)
        except FileNotFoundError:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            return os.open(self.directory, _STORE_FLAGS)

    def has(self, digest: bytes) -> bool:
        return os.path.isfile(self.path_for(digest))

    def begin(self, digest: bytes) -> "StagedWriter":
        """Start receiving the content of ``digest`` piece by piece (across messages); nothing is
        visible under the final name until ``commit`` verified it."""
        final = self.path_for(digest)
        os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
        return StagedWriter(self, bytes(digest), final)

    def receive(self, digest: bytes, chunks: Iterable[bytes]) -> str:
        """Write ``chunks`` as the content of ``digest``; verify, then publish. Returns the path."""
        writer = self.begin(digest)
        try:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit()
        finally:
            writer.abort()  # no-op after a successful commit

    def receive_file(self, digest: bytes, source: str, *, dir_fd: Optional[int] = None) -> str:
        """Stage a copy of a local file (content reuse from the root), verified like ``receive``."""
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return self.receive(digest, iter(lambda: handle.read(1 << 20), b""))
        finally:
            os.close(fd)

    def resume_path(self, digest: bytes) -> str:
        """Where the partial content of ``digest`` is kept between attempts."""
        return self.path_for(digest) + RESUME_SUFFIX

    def resume_size(self, digest: bytes) -> int:
        """Bytes of partial content kept for ``digest`` (0 if none)."""
        try:
            st = os.lstat(self.resume_path(digest))
        except FileNotFoundError:
            return 0
        return st.st_size if stat.S_ISREG(st.st_mode) else 0

    def discard_resume(self, digest: bytes) -> None:
        try:
            os.unlink(self.resume_path(digest))
        except FileNotFoundError:
            pass

    def resume_digests(self) -> Iterator[bytes]:
        """Digests with partial content kept."""
        for name, _path in self._entries():
            if name.endswith(RESUME_SUFFIX):
                try:
                    yield bytes.fromhex(name[: -len(RESUME_SUFFIX)])
                except ValueError:
                    continue

    def keep_resumes(self, digests) -> dict[bytes, int]:
        """Remove the partial content of every digest not in ``digests``; returns the sizes of
        the partial content kept (digest -> bytes), in one pass over the store."""
        keep = set(digests)
        kept: dict[bytes, int] = {}
        for digest in list(self.resume_digests()):
            if digest not in keep:
                self.discard_resume(digest)
            else:
                size = self.resume_size(digest)
                if size:
                    kept[digest] = size
        return kept

    def _entries(self) -> Iterator[tuple[str, str]]:
        try:
            buckets = os.scandir(self.directory)
        except FileNotFoundError:
            return
        with buckets:
            for bucket in buckets:
                if not bucket.is_dir(follow_symlinks=False) or len(bucket.name) != 2:
                    continue
                with os.scandir(bucket.path) as files:
                    for item in files:
                        yield item.name, item.path

    def discard(self, digest: bytes) -> None:
        self._sizes.discard(digest)
        try:
            os.unlink(self.path_for(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> Iterator[bytes]:
        """Digests currently staged (complete, verified files only)."""
        for name, _path in self._entries():
            if _PARTIAL in name or name.endswith(RESUME_SUFFIX):
                continue
            try:
                yield bytes.fromhex(name)
            except ValueError:
                continue

    def wipe(self) -> None:
        """Remove the whole store (staged and partial files)."""
        self._sizes = _Sizes(self._digest_size)
        shutil.rmtree(self.directory, ignore_errors=True)


class _Sizes:
    """A map digest -> (size, place) without an object per entry: records of ``digest + size
    + place`` (8 bytes each, little-endian) packed in 4,096 ``bytearray`` buckets chosen by the
    digest's first 12 bits (digests are uniform). ``place`` is 0 for content under the digest's
    name, else the ``path_key`` of the path in the tree where it was placed. A dict of 100k
    digests held ~13 MB of small objects, ~8 MB of which stayed resident (fragmented) after it
    was dropped; this holds 3.2 MB in a few thousand buffers. ``put`` appends (the last record
    of a digest wins), ``get`` searches its bucket from the end; ``discard`` removes every
    record of a digest."""

    __slots__ = ("size", "width", "buckets")
    BUCKETS = 4096

    def __init__(self, digest_size: int):
        self.size = digest_size
        self.width = digest_size + 16
        self.buckets: list[Optional[bytearray]] = [None] * self.BUCKETS

    @staticmethod
    def _index(digest: bytes) -> int:
        return ((digest[0] << 8) | digest[1]) >> 4

    def _find(self, bucket: bytearray, digest: bytes) -> int:
        """Offset of the last record of ``digest`` in ``bucket``, or -1."""
        at = bucket.rfind(digest)
        while at > 0 and at % self.width:  # a match straddling two records: look further back
            at = bucket.rfind(digest, 0, at + self.size - 1)
        return at

    def put(self, digest: bytes, size: int, place: int = 0) -> None:
        index = self._index(digest)
        bucket = self.buckets[index]
        if bucket is None:
            bucket = self.buckets[index] = bytearray()
        bucket += digest
        bucket += _SIZE_PLACE.pack(size, place)

    def record(self, digest: bytes) -> Optional[tuple[int, int]]:
        """``(size, place)`` of the last record of ``digest``, or None."""
        bucket = self.buckets[self._index(digest)]
        if not bucket:
            return None
        at = self._find(bucket, digest)
        if at < 0:
            return None
        at += self.size
        return (int.from_bytes(bucket[at:at + 8], "little"),
                int.from_bytes(bucket[at + 8:at + 16], "little"))

    def placed(self, digest: bytes, place: int) -> Optional[int]:
        """The size of the last record of ``digest`` if it is content placed at ``place``
        (a path key, never 0), else None. ``record`` in one call, for the transition's loop."""
        bucket = self.buckets[((digest[0] << 8) | digest[1]) >> 4]
        if not bucket:
            return None
        at = bucket.rfind(digest)
        width = self.width
        while at > 0 and at % width:
            at = bucket.rfind(digest, 0, at + self.size - 1)
        if at < 0:
            return None
        at += self.size
        if int.from_bytes(bucket[at + 8:at + 16], "little") != place:
            return None
        return int.from_bytes(bucket[at:at + 8], "little")

    def get(self, digest: bytes) -> Optional[int]:
        """The size of the last record of ``digest`` if it is content under the digest's name
        (not placed), else None."""
        found = self.record(digest)
        if found is None or found[1]:
            return None
        return found[0]

    def discard(self, digest: bytes) -> None:
        bucket = self.buckets[self._index(digest)]
        while bucket:
            at = self._find(bucket, digest)
            if at < 0:
                return
            del bucket[at:at + self.width]


class StagedWriter:
    """One file being staged: ``write`` pieces in order, then ``commit`` (verify and publish) or
    ``abort`` (discard). The partial file has a ``.partial-`` name that ``digests`` ignores."""

    def __init__(self, store: Staging, digest: bytes, final: str):
        self.store = store
        self.digest = digest
        self.final = final
        self.temporary = f"{final}{_PARTIAL}{secrets.token_hex(6)}"
        self.size = 0
        self._hasher = new_hasher(store.algorithm)
        self._fd: Optional[int] = os.open(self.temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                                           store.file_mode)
        self._done = False

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise StagingError("staged file already committed or aborted")
        limit = self.store.max_file_size
        if limit and self.size + len(data) > limit:
            self.abort()
            raise StagingError(f"staged file exceeds the maximum staging file size ({limit} bytes)")
        self._hasher.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self.size += len(data)

    def commit(self) -> str:
        """Verify the digest and publish the file; returns its path. Raises StagingError (and
        discards the partial file) on a mismatch."""
        if self._fd is None:
            raise StagingError("staged file already committed or aborted")
        os.close(self._fd)
        self._fd = None
        actual = self._hasher.digest()
        if actual != self.digest:
            self._unlink()
            raise StagingError(
                f"staged content does not match its digest (expected {self.digest.hex()}, got {actual.hex()})"
            )
        os.rename(self.temporary, self.final)
        self._done = True
        self.store.named(self.digest, self.size)
        return self.final

    def abort(self) -> None:
        """Discard the partial file (safe to call more than once, and after ``commit``)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self._done:
            self._unlink()
            self._done = True

    def _unlink(self) -> None:
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass
