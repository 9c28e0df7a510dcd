"""The content-moving half of an endpoint: the receiver's staging (``Receiver``) and the
sender's supply (``Supplier``) of the staging pipeline (``actors.syncsession.stager``).

Staging goes, per file: reuse -> delta -> resume.

- **Reuse** (``Receiver.needs``): content already staged is kept; when at least
  ``REUSE_MIN_ITEMS`` digests are missing, a local file with the same digest is copied into
  staging (verified).
- **Delta**: for a file still needed whose path in the root holds a regular file of at least
  ``DELTA_MIN_SIZE`` bytes (the *base*), the answer carries the base's chunk signature
  (``actors.sync.chunking``), at most ``SIGNATURE_BUDGET`` bytes of signatures and
  ``SIGNING_BUDGET`` bytes of bases read per answer (beyond: whole transfers). The
  sender then streams delta operations instead of raw bytes (``Supplier``), and the receiver
  rebuilds the file (``actors.sync.delta.Rebuilder``): every copied chunk of the base is re-read
  and checked against the signature, every literal against its own digest, before a byte is
  written.
- **Resume**: a file is received into ``Staging.resume_path(digest)``; what it holds when a
  transfer is cut stays there, and ``needs`` reports its length as the item's ``offset``, so the
  next attempt sends only the rest (raw or delta). Partial content of digests no longer wanted is
  removed by ``needs`` (the target changed) and everything by ``Staging.wipe`` after a transition.

A file that arrives whole in one chunk (offset 0, end of file: every small file) takes the short
path: its bytes are hashed in memory and compared with the digest before anything is written,
then written under the final name directly, relative to the store directory opened once per
message (open, write, close: three system calls per file). A crash in the middle of that write
can leave the file short under its name; no process trusts it: the size recorded with
``Staging.named`` exists only once the write completed, and content without a record (staged by
an earlier process) is hashed by ``needs`` (``Staging.verify``) before it counts as staged.

Place on arrival: after a ``StageBegin`` (``needs``), a whole file whose digest occurs once among
its items is written not under its digest's name but at its own path in the store's tree
(``<store>/tree/<path>``, directories created 0700 as needed, the current directory's descriptor
kept while files arrive in path order, ``O_EXCL``: nothing there is replaced), and recorded for
that (path, digest) with ``Staging.placed``: the transition then renames whole directories in
(``actors.sync.transition``). Only when the store is on the root's filesystem (or that of the
root's nearest existing ancestor); a path that must not be resolved, a name taken, any OSError:
the digest's name as before. ``needs`` first sorts what an earlier ``StageBegin`` or process left
in the tree (``Staging.settle_tree``): a file matching a new item at its path counts as staged.

Verification and failure rules: a file is renamed to its final staging name only after its whole
content matched the session digest. ``Receiver.receive`` answers ``(completed, problems,
refetch)``: a delta that fails (``DeltaError``: a corrupt literal, a base chunk that changed, a
delta against an unknown signature) or content that does not verify (a corrupted chunk, a resumed
prefix that was wrong, a file that changed while it was read) discards the partial content and
lists the item in ``refetch``: the stager fetches it again whole from offset 0 (once). A sender
that cannot read the file (error chunk), an out-of-order piece, the staging size limit or an
OSError only discard and report a problem. Nothing unverified ever gets a final name, and
each of these paths (whole, pieces and resumes, deltas, local copies through
``Staging.receive_file``) records the verified size with ``Staging.named`` right after its
rename: the transition trusts such a name and checks only the size (``actors.sync.staging``).
Files are created with ``Staging.file_mode`` (the endpoint's new-file mode), so they need no
``chmod`` at the transition.

Memory: the receiver holds one chunk of a message at a time plus one base chunk group; the sender
holds one literal block and the chunker's buffer per open delta stream (at most
``MAX_STREAMS``, each an open file kept between ``Supply`` requests of the same file so a long
delta is computed in one pass).
"""

from __future__ import annotations

import os
import stat
import struct
from collections import OrderedDict
from typing import Optional

from mutagen_actors.actors.sync.cache import META, META_SIZE
from mutagen_actors.actors.sync.chunking import DeltaError, Signature, fingerprint, signature
from mutagen_actors.actors.sync.delta import Literal, Rebuilder, Start, delta, span_of
from mutagen_actors.actors.sync.hashing import DIGEST_SIZES, digest_bytes, new_hasher, one_shot
from mutagen_actors.actors.sync.model import Problem
from mutagen_actors.actors.sync.paths import directory_device, open_directory, split_path
from mutagen_actors.actors.sync.staging import RESUME_SUFFIX, StagingError
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem, SupplyRequest

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A placed file never replaces anything: a name already in the tree is someone's placed content.
_PLACE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
REUSE_MIN_ITEMS = 8  # local content reuse costs a pass over the digest cache (local_copies)
REUSE_PATHS = 4  # local copies of one digest tried
DELTA_MIN_SIZE = 1 << 20  # smaller bases are not signed (see docs/architecture.md)
SIGNATURE_BUDGET = 16 << 20  # bytes of signatures in one StageNeeds answer
SIGNING_BUDGET = 8 << 30  # bytes of bases read to sign them in one StageBegin (its deadline)
SIGNATURE_CACHE = 8  # signatures of unchanged bases kept (repeated cycles, resumes)
MAX_STREAMS = 4  # open delta streams kept by a sender between Supply requests
MAX_OPERATIONS = 4096  # delta operations per chunk
OPERATION_COST = 16  # what an operation counts against a Supply budget, besides literal bytes
# Output one delta piece may stand for (copies are cheap on the wire but the receiver re-reads and
# verifies them): bounds the work behind one Supply / StageChunks well inside their deadlines.
MAX_SPAN = 256 << 20
_PREFIX_READ = 1 << 20
# The first read of a raw Supply request: a small file whole, its size from a short read. Below
# glibc's mmap threshold (128 KiB): a bigger buffer costs ~18 us to map per read.
FIRST_READ = 64 << 10


class _Refetch(StagingError):
    """Content did not verify: discard it and fetch the file again whole."""


def open_in_root(root: str, path: str, root_fd: Optional[int] = None) -> int:
    """A read-only descriptor of file ``path`` inside ``root`` (or the open directory
    ``root_fd``): no ``..``, no symbolic link in any component (OSError / ValueError otherwise).
    The file may be of any type: callers check what they need."""
    components = split_path(path)
    if not components:
        raise ValueError("the root is not a file")
    if root_fd is not None:
        parent = open_directory(root_fd, components[:-1])
    else:
        root_fd = os.open(root, _ROOT_FLAGS)
        try:
            parent = open_directory(root_fd, components[:-1])
        finally:
            os.close(root_fd)
    try:
        return os.open(components[-1], _READ_FLAGS, dir_fd=parent)
    finally:
        os.close(parent)


def _error_text(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


# ---------------------------------------------------------------------------- receiver


def local_copies(cache, digests: set[bytes], limit: int = REUSE_PATHS) -> dict[bytes, list[str]]:
    """Paths of the root whose cached content is one of ``digests`` (at most ``limit`` each, in
    the cache's order); digests with none are absent. One pass over ``cache`` (a
    ``DigestCache``) that keeps only what matches: the cache's own reverse map
    (``DigestCache.paths_for``) would build a list and a path string for every file of the root
    (27 MB for 100k files, held from ``StageBegin`` to the transition, and ~6 MB of fragmented
    heap left resident once dropped) to answer a few dozen digests."""
    found: dict[bytes, list[str]] = {}
    if not digests:
        return found
    start = META_SIZE
    for parent, records in cache.directories.items():
        for name, record in records.items():
            digest = record[start:]
            if digest in digests:
                paths = found.setdefault(digest, [])
                if len(paths) < limit:
                    paths.append(f"{parent}/{name}" if parent else name)
    return found


class _Partial:
    """A file being received into its resume file."""

    __slots__ = ("fd", "path", "hasher", "offset", "rebuilder", "base_fd", "limit")

    def __init__(self, fd: int, path: str, hasher, offset: int, limit: int):
        self.fd, self.path, self.hasher, self.offset, self.limit = fd, path, hasher, offset, limit
        self.rebuilder: Optional[Rebuilder] = None
        self.base_fd: Optional[int] = None

    def write(self, data) -> None:
        if self.limit and self.offset + len(data) > self.limit:
            raise StagingError(
                f"staged file exceeds the maximum staging file size ({self.limit} bytes)")
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self.hasher.update(data)
        self.offset += len(data)

    def close(self) -> None:
        for name in ("fd", "base_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        self.rebuilder = None


class Receiver:
    """The receiving side's staging for ``endpoint`` (a ``LocalEndpoint``: its ``root``,
    ``staging``, ``cache`` and ``settings`` are read at each call)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self._partials: dict[bytes, _Partial] = {}
        self._bases: dict[bytes, tuple[str, Signature]] = {}  # target digest -> base offered
        self._signatures: OrderedDict = OrderedDict()  # (path, identity) -> Signature
        self._place = False  # whole files may be placed in the store's tree (``needs`` says)
        self._duplicates: set[bytes] = set()  # digests of more than one item: never placed

    # -- StageBegin

    def needs(self, items: list[StageItem]) -> list[StageItem]:
        """What is still needed of ``items`` (one item per digest), each with its resume
        ``offset`` and, for a large file with a base at its path, a ``signature``."""
        staging = self.endpoint.staging
        self.close()
        self._bases.clear()
        # Place on arrival (``receive``): only content whose digest occurs once among the items,
        # and only when the store is on the root's filesystem (the transition renames it in).
        seen: set[bytes] = set()
        duplicates: set[bytes] = set()
        for item in items:
            if item.digest in seen:
                duplicates.add(item.digest)
            else:
                seen.add(item.digest)
        self._duplicates = duplicates
        self._place = bool(items) and self._placement_possible()
        # What an earlier StageBegin or process left in the tree: kept where it is the content
        # of a new item at its path, else moved into the store by its digest (before the listing).
        try:
            kept = staging.settle_tree((item.path, item.digest) for item in items
                                       if item.digest not in duplicates)
        except OSError:
            kept = set()
        candidates: list[StageItem] = []
        # One listing of the store instead of a stat per item (an initial sync asks for every
        # file of the tree; the store is then empty or absent).
        present: set[bytes] = set(staging.digests())
        seen.clear()
        for item in items:
            digest = item.digest
            if digest in seen:
                continue
            seen.add(digest)
            if kept and item.path in kept:
                continue
            # Staged by an earlier process (no size recorded here): hashed once now, so content
            # a crash left short under its name is fetched in this cycle, not found at the
            # transition (which then trusts the name).
            if digest in present and (staging.verified_size(digest) is not None
                                      or self._verify_staged(digest)):
                continue
            candidates.append(item)
        if len(candidates) >= REUSE_MIN_ITEMS:
            local = local_copies(self.endpoint.cache, {item.digest for item in candidates})
            if local:
                candidates = [item for item in candidates
                              if not self._reuse_local(item.digest, local.get(item.digest, ()))]
        try:
            resumes = staging.keep_resumes({item.digest for item in candidates})
        except OSError:
            resumes = {}
        budget, reading = SIGNATURE_BUDGET, SIGNING_BUDGET
        cache = self.endpoint.cache
        needed = []
        for item in candidates:
            offset = resumes.get(item.digest, 0)
            sig = None
            record = cache.record(item.path)  # the last scan's view: no syscall per small file
            if (budget > 0 and record is not None
                    and DELTA_MIN_SIZE <= record[0] <= reading):
                sig = self._sign(item.path)
                if sig is not None:
                    budget -= 24 * len(sig.lengths)
                    reading -= sig.size
                    self._bases[item.digest] = (item.path, sig)
            needed.append(StageItem(item.path, item.digest, offset, sig))
        return needed

    def _placement_possible(self) -> bool:
        """Whether the store is on the root's filesystem (the root's nearest existing ancestor
        when the root does not exist yet): content placed in the store's tree can then be
        renamed into the root."""
        try:
            store = self.endpoint.staging.open_store()
            try:
                device = os.fstat(store).st_dev
            finally:
                os.close(store)
        except OSError:
            return False
        return directory_device(self.endpoint.root, nearest=True) == device

    def _verify_staged(self, digest: bytes) -> bool:
        try:
            return self.endpoint.staging.verify(digest) is not None
        except OSError:
            return False

    def _sign(self, path: str) -> Optional[Signature]:
        """The chunk signature of the regular file at ``path`` in the root if it is big enough
        to be a delta base (None otherwise, or if it cannot be read)."""
        try:
            fd = open_in_root(self.endpoint.root, path)
        except (OSError, ValueError):
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size < DELTA_MIN_SIZE:
                return None
            key = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            cached = self._signatures.get(key)
            if cached is not None:
                self._signatures.move_to_end(key)
                return cached
            with os.fdopen(os.dup(fd), "rb", buffering=0) as handle:
                sig = signature(handle)
        except OSError:
            return None
        finally:
            os.close(fd)
        self._signatures[key] = sig
        while len(self._signatures) > SIGNATURE_CACHE:
            self._signatures.popitem(last=False)
        return sig

    def _reuse_local(self, digest: bytes, paths) -> bool:
        """Copy the content ``digest`` into staging from the first of ``paths`` (files of the
        root whose cached digest it is) that can be read; whether one could."""
        endpoint = self.endpoint
        for path in paths:
            try:
                components = split_path(path)
                root_fd = os.open(endpoint.root, _ROOT_FLAGS)
                try:
                    parent = open_directory(root_fd, components[:-1])
                finally:
                    os.close(root_fd)
                try:
                    endpoint.staging.receive_file(digest, components[-1], dir_fd=parent)
                finally:
                    os.close(parent)
                return True
            except (OSError, ValueError):
                continue
        return False

    # -- StageChunks

    def receive(self, chunks: list[Chunk]) -> tuple[int, list[Problem], list[StageItem]]:
        """Write ``chunks``; returns (files completed, problems, items to fetch again whole).

        A file that arrives whole (offset 0, end of file, raw bytes: every small file) takes the
        short path inline (``_receive_whole`` states its rules): what it needs per message (the
        store's descriptor, the hash function, the mode, the size limit) is looked up once, not
        per file. Everything else, and any failure, goes through the general path."""
        completed = 0
        problems: list[Problem] = []
        refetch: list[StageItem] = []
        failed: set[bytes] = set()
        staging = self.endpoint.staging
        partials = self._partials
        store: Optional[int] = None
        hash_of = one_shot(staging.algorithm)
        mode = staging.file_mode
        limit = staging.max_file_size
        named = staging.named
        digest_size = DIGEST_SIZES[staging.algorithm]
        write, close = os.write, os.close
        place = self._place
        duplicates = self._duplicates
        placed = staging.placed
        tree: Optional[int] = None  # the store's tree, once opened
        here: Optional[str] = None  # the directory (path up to its last "/") open as here_fd
        here_fd = -1
        try:
            for chunk in chunks:
                digest = chunk.digest
                if (chunk.offset == 0 and chunk.eof and chunk.delta is None and not chunk.error
                        and type(digest) is bytes and len(digest) == digest_size
                        and digest not in partials and digest not in failed):
                    data = chunk.data
                    size = len(data)
                    if (not limit or size <= limit) and hash_of(data) == digest:
                        if place and digest not in duplicates:
                            # Placed on arrival: at its own path in the store's tree, where the
                            # transition adopts whole directories (``actors.sync.transition``).
                            path = chunk.path
                            cut = path.rfind("/") + 1
                            leaf = path[cut:]
                            fd = -1
                            try:
                                if path[:cut] != here:
                                    if here_fd >= 0:
                                        close(here_fd)
                                        here_fd, here = -1, None
                                    components = split_path(path)
                                    if tree is None:
                                        tree = staging.open_tree()
                                    here_fd = _make_directories(tree, components[:-1])
                                    here = path[:cut]
                                if leaf and leaf != "." and leaf != "..":
                                    fd = os.open(leaf, _PLACE_FLAGS, mode, dir_fd=here_fd)
                            except (OSError, ValueError):
                                fd = -1  # the digest's name below
                            if fd >= 0:
                                try:
                                    written = write(fd, data)
                                except OSError:
                                    written = -1
                                finally:
                                    close(fd)
                                if written == size:
                                    placed(digest, size, path)
                                    completed += 1
                                    continue
                                _unlink_at(here_fd, leaf)
                        # The fast path: verified in memory, written under the final name.
                        text = digest.hex()
                        name = f"{text[:2]}/{text}"
                        try:
                            if store is None:
                                store = staging.open_store()
                            fd = os.open(name, _WRITE_FLAGS, mode, dir_fd=store)
                        except OSError:
                            fd = -1  # the bucket is missing, or worse: the general path says
                        if fd >= 0:
                            try:
                                written = write(fd, data)  # one write for a small file
                            except OSError:
                                written = -1
                            finally:
                                close(fd)
                            if written == size:
                                named(digest, size)
                                completed += 1
                                continue
                            _unlink_at(store, name)
                # The general path (and every failure: its message and its refetch).
                if digest in failed:
                    continue  # the rest of a file that already failed in this message
                try:
                    if (chunk.offset == 0 and chunk.eof and chunk.delta is None and not chunk.error
                            and digest not in partials):
                        if store is None:
                            store = staging.open_store()
                        self._receive_whole(store, chunk)
                        completed += 1
                    elif self._receive_chunk(chunk):
                        completed += 1
                except (DeltaError, _Refetch) as error:
                    self._drop(digest, discard=True)
                    failed.add(digest)
                    problems.append(Problem(chunk.path, str(error)))
                    refetch.append(StageItem(chunk.path, digest))
                except (OSError, StagingError) as error:
                    self._drop(digest, discard=True)
                    failed.add(digest)
                    problems.append(Problem(chunk.path, _error_text(error)))
        finally:
            if store is not None:
                os.close(store)
            if tree is not None:
                os.close(tree)
            if here_fd >= 0:
                os.close(here_fd)
        return completed, problems, refetch

    def _receive_whole(self, store: int, chunk: Chunk) -> None:
        """A whole file in one piece (the common case of small files): its bytes are verified
        against the digest in memory first (nothing is written when they do not match), then
        written under the digest's final name relative to the open store directory ``store``
        (no per-file path resolution, no per-file ``makedirs``: the bucket directory is
        created only when the open says it is missing; no rename: see the module docstring for
        what a crash mid-write leaves and why it is never trusted). A write that fails removes
        the file."""
        staging = self.endpoint.staging
        name = staging.relative_name(chunk.digest)
        data = chunk.data
        limit = staging.max_file_size
        if limit and len(data) > limit:
            raise StagingError(
                f"staged file exceeds the maximum staging file size ({limit} bytes)")
        if digest_bytes(data, staging.algorithm) != chunk.digest:
            raise _Refetch("received content does not match its digest "
                           "(corrupted in transit, or changed while sent)")
        try:
            fd = os.open(name, _WRITE_FLAGS, staging.file_mode, dir_fd=store)
        except FileNotFoundError:
            try:
                os.mkdir(name[:2], 0o700, dir_fd=store)
            except FileExistsError:
                pass
            fd = os.open(name, _WRITE_FLAGS, staging.file_mode, dir_fd=store)
        try:
            written = os.write(fd, data)  # one write for a small file
            if written < len(data):
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            _unlink_at(store, name)
            raise
        os.close(fd)
        staging.named(chunk.digest, len(data))

    def _receive_chunk(self, chunk: Chunk) -> bool:
        if chunk.error:
            self._drop(chunk.digest, discard=True)
            raise StagingError(chunk.error)
        partial = self._partials.get(chunk.digest)
        if partial is None or chunk.offset == 0:
            if partial is not None:
                self._drop(chunk.digest, discard=False)
            partial = self._partials[chunk.digest] = self._open(chunk)
        if chunk.offset != partial.offset:
            raise StagingError(f"content of {chunk.path!r} arrived out of order")
        if chunk.delta is not None:
            operations = chunk.delta
            if operations and isinstance(operations[0], Start):
                self._start_delta(chunk, partial, operations[0])
                operations = operations[1:]
            if operations and partial.rebuilder is None:
                raise DeltaError("delta operations arrived without a start")
            for operation in operations:
                partial.rebuilder.feed(operation)
        else:
            partial.write(chunk.data)
        if not chunk.eof:
            return False
        del self._partials[chunk.digest]
        partial.close()
        self._forget_base(chunk.digest)
        if partial.hasher.digest() != chunk.digest:
            _unlink(partial.path)
            raise _Refetch("received content does not match its digest "
                           "(corrupted in transit, or changed while sent)")
        staging = self.endpoint.staging
        os.rename(partial.path, staging.path_for(chunk.digest))
        staging.named(chunk.digest, partial.offset)
        return True

    def _open(self, chunk: Chunk) -> _Partial:
        """The resume file of ``chunk.digest``, truncated to ``chunk.offset`` bytes (which it must
        hold; they are hashed so the whole file is verified at the end)."""
        staging = self.endpoint.staging
        settings = self.endpoint.settings
        path = staging.resume_path(chunk.digest)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, staging.file_mode)
        try:
            hasher = new_hasher(settings.hash)
            if chunk.offset:
                have = os.fstat(fd).st_size
                if have < chunk.offset:
                    raise _Refetch(f"content of {chunk.path!r} arrived out of order (it resumes "
                                   f"at byte {chunk.offset} but {have} bytes are staged)")
                done = 0
                while done < chunk.offset:
                    block = os.pread(fd, min(_PREFIX_READ, chunk.offset - done), done)
                    if not block:
                        raise _Refetch(f"staged prefix of {chunk.path!r} is shorter than expected")
                    hasher.update(block)
                    done += len(block)
            os.ftruncate(fd, chunk.offset)
            os.lseek(fd, chunk.offset, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return _Partial(fd, path, hasher, chunk.offset, settings.max_staging_file_size)

    def _start_delta(self, chunk: Chunk, partial: _Partial, start: Start) -> None:
        offered = self._bases.get(chunk.digest)
        if offered is None:
            raise DeltaError(f"a delta for {chunk.path!r} arrived but no base was offered")
        base_path, sig = offered
        if partial.base_fd is not None:
            os.close(partial.base_fd)
            partial.base_fd = None
        try:
            partial.base_fd = open_in_root(self.endpoint.root, base_path)
        except (OSError, ValueError) as error:
            raise DeltaError(f"the delta base {base_path!r} cannot be opened: "
                             f"{_error_text(error)}") from None
        base_fd = partial.base_fd
        partial.rebuilder = Rebuilder(lambda offset, length: os.pread(base_fd, length, offset),
                                      sig, partial.write, partial.offset)
        partial.rebuilder.check_start(start)

    def _forget_base(self, digest: bytes) -> None:
        """The whole of ``digest`` arrived: its base's signature is not needed again (the file is
        staged, so the next ``needs`` skips it; the transition replaces the base). A signature
        of a 100 MiB base is ~11k objects, 0.6 MB, kept for good otherwise."""
        offered = self._bases.pop(digest, None)
        if offered is None:
            return
        sig = offered[1]
        for key in [key for key, kept in self._signatures.items() if kept is sig]:
            del self._signatures[key]

    def _drop(self, digest: bytes, *, discard: bool) -> None:
        partial = self._partials.pop(digest, None)
        if partial is not None:
            partial.close()
        if discard:
            try:
                self.endpoint.staging.discard_resume(digest)
            except (OSError, StagingError):
                pass

    def close(self) -> None:
        """Close every file being received; their verified-so-far content stays for resuming."""
        for digest in list(self._partials):
            self._drop(digest, discard=False)


# ---------------------------------------------------------------------------- sender


class _Stream:
    """A delta being computed for one file, kept between Supply requests."""

    __slots__ = ("handle", "operations", "position", "size", "signature", "offsets")

    def __init__(self, handle, operations, position: int, size: int, sig: Signature):
        self.handle, self.operations, self.position, self.size = handle, operations, position, size
        self.signature = sig
        self.offsets = sig.offsets()

    def close(self) -> None:
        self.handle.close()


class _Parents:
    """Opens and reads files for one ``Supply`` as ``open_in_root`` does (no ``..``, no symbolic
    link in any component), keeping the last parent directory open: requests come in path order,
    many files per directory, so each directory is walked to once per batch instead of once per
    file. The open parent is keyed by the path's text up to its last ``/``: a new key is
    validated whole (``split_path``) and walked (``open_directory``, never following a link);
    under the same key only the last component is checked. ``close`` closes it."""

    __slots__ = ("root_fd", "key", "fd")

    def __init__(self, root_fd: int):
        self.root_fd, self.key, self.fd = root_fd, None, -1

    def open_file(self, path: str) -> int:
        cut = path.rfind("/") + 1
        key = path[:cut]
        name = path[cut:]
        if key != self.key:
            components = split_path(path)
            if not components:
                raise ValueError("the root is not a file")
            self.close()
            self.fd = open_directory(self.root_fd, components[:-1])
            self.key = key
        elif not name or name == "." or name == "..":
            split_path(path)  # raises, naming what is wrong
        return os.open(name, _READ_FLAGS, dir_fd=self.fd)

    def read(self, request: SupplyRequest, budget: int) -> Chunk:
        """Raw bytes of ``request`` from its offset, at most ``budget`` (>= 1): one ``pread`` of
        at most ``FIRST_READ`` bytes; a short read is the end of the file (its size is then
        known without an ``fstat``). A read that fills it (a bigger file) asks the size and
        reads what the budget allows. An error becomes an error chunk."""
        offset = request.offset
        try:
            fd = self.open_file(request.path)
            try:
                want = budget if budget < FIRST_READ else FIRST_READ
                data = os.pread(fd, want, offset)
                if len(data) < want and (data or not offset):
                    size = offset + len(data)
                else:
                    size = os.fstat(fd).st_size
                    more = min(budget, max(0, size - offset))
                    if more > len(data):
                        data = os.pread(fd, more, offset)
                    elif more < len(data):
                        data = data[:more]
            finally:
                os.close(fd)
        except (OSError, ValueError) as error:
            return Chunk(request.path, request.digest, offset, 0, b"", True,
                         f"unable to read file: {_error_text(error)}")
        return Chunk(request.path, request.digest, offset, size, data,
                     offset + len(data) >= size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.key, self.fd = None, -1


_SIZE_FIELD = struct.Struct(META.format[:2])  # a cache record's first field: the size


class Supplier:
    """The sending side's supply for ``endpoint`` (its ``root`` and ``cache``)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self._streams: OrderedDict = OrderedDict()  # (path, digest, base) -> _Stream
        self._signatures: OrderedDict = OrderedDict()  # fingerprint -> Signature

    def sizes(self, paths: list[str]) -> list[int]:
        """The size the digest cache records for each path (-1: none). Paths come sorted, many
        per directory: each directory's records are looked up once per run of its paths, and
        only the size field of a record is unpacked."""
        directories = self.endpoint.cache.directories
        size_of = _SIZE_FIELD.unpack_from
        sizes = []
        add = sizes.append
        parent, records = None, None
        for path in paths:
            cut = path.rfind("/")
            here = path[:cut] if cut >= 0 else ""
            if here != parent:
                parent, records = here, directories.get(here)
            record = records.get(path[cut + 1:]) if records is not None else None
            add(size_of(record)[0] if record is not None else -1)
        return sizes

    def supply(self, requests: list[SupplyRequest], max_bytes: int) -> list[Chunk]:
        """Content for ``requests``, at most about ``max_bytes`` of payload (at least one chunk)."""
        chunks: list[Chunk] = []
        budget = max(1, max_bytes)
        try:
            root_fd = os.open(self.endpoint.root, _ROOT_FLAGS)
        except OSError as error:
            return [Chunk(r.path, r.digest, r.offset, 0, b"", True,
                          f"unable to open synchronization root: {error.strerror}")
                    for r in requests]
        parents = _Parents(root_fd)
        read, append = parents.read, chunks.append
        try:
            for request in requests:
                if budget <= 0:
                    break
                if request.signature is None and not request.base:
                    chunk = read(request, budget)
                    budget -= len(chunk.data)
                    append(chunk)
                    continue
                chunk = self._delta(root_fd, request, budget)
                if chunk is None:
                    chunk = read(request, budget)
                budget -= chunk.payload + OPERATION_COST * len(chunk.delta or ())
                append(chunk)
        finally:
            parents.close()
            os.close(root_fd)
        return chunks

    def _signature_for(self, request: SupplyRequest) -> tuple[Optional[Signature], bytes]:
        if request.signature is not None:
            base = fingerprint(request.signature)
            self._signatures[base] = request.signature
            self._signatures.move_to_end(base)
            while len(self._signatures) > MAX_STREAMS:
                self._signatures.popitem(last=False)
            return request.signature, base
        return self._signatures.get(request.base), request.base

    def _delta(self, root_fd: int, request: SupplyRequest, budget: int) -> Optional[Chunk]:
        """Delta operations for ``request``, or None to answer raw bytes (the signature is not
        known here any more, or cannot be used)."""
        sig, base = self._signature_for(request)
        if sig is None:
            return None
        key = (request.path, request.digest, base)
        stream = self._streams.pop(key, None)
        if stream is not None and stream.position != request.offset:
            stream.close()
            stream = None
        if stream is None:
            try:
                fd = open_in_root(self.endpoint.root, request.path, root_fd)
            except (OSError, ValueError) as error:
                return Chunk(request.path, request.digest, request.offset, 0, b"", True,
                             f"unable to read file: {_error_text(error)}")
            handle = os.fdopen(fd, "rb", buffering=0)
            try:
                size = os.fstat(fd).st_size
                operations = delta(sig, handle, resume_from=request.offset)
            except (OSError, DeltaError):
                handle.close()
                return None
            stream = _Stream(handle, operations, request.offset, size, sig)
            operations = []
        elif request.signature is not None:
            # A new pass continuing where the kept stream stands: the receiver needs a start.
            operations = [Start(base, request.offset)]
        else:
            operations = []
        cost = 0
        span = 0
        eof = False
        lengths = sig.lengths
        try:
            while cost < budget and len(operations) < MAX_OPERATIONS and span < MAX_SPAN:
                operation = next(stream.operations, None)
                if operation is None:
                    eof = True
                    break
                operations.append(operation)
                cost += OPERATION_COST
                if isinstance(operation, Literal):
                    cost += len(operation.data)
                span += span_of(operation, lengths, stream.offsets)
        except (OSError, DeltaError) as error:
            stream.close()
            return Chunk(request.path, request.digest, request.offset, 0, b"", True,
                         f"unable to read file: {_error_text(error)}")
        stream.position += span
        if eof:
            stream.close()
            # The receiver has the whole file: its signature is not needed again (a later request
            # naming it would be answered raw bytes). Others' open streams may share it.
            if not any(other[2] == base for other in self._streams):
                self._signatures.pop(base, None)
        else:
            self._streams[key] = stream
            while len(self._streams) > MAX_STREAMS:
                self._streams.popitem(last=False)[1].close()
        return Chunk(request.path, request.digest, request.offset, stream.size, b"", eof,
                     delta=operations, span=span)

    def close(self) -> None:
        while self._streams:
            self._streams.popitem(last=False)[1].close()


def _make_directories(tree: int, components: list[str]) -> int:
    """A descriptor of directory ``components`` below the open directory ``tree``, each
    component created (0700) where missing, none followed if it is a symbolic link (OSError)."""
    fd = os.dup(tree)
    try:
        for component in components:
            try:
                next_fd = os.open(component, _ROOT_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                try:
                    os.mkdir(component, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                next_fd = os.open(component, _ROOT_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlink_at(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["Receiver", "Supplier", "open_in_root", "DELTA_MIN_SIZE"]
