"""One synchronization root as an endpoint: scan, watch, stage, supply, transition.

This is the code that runs next to the files (in a local agent process now, inside a remote agent
later), so it imports only ``wire`` and the sync core (``actors.sync``), never daemon code.

``LocalEndpoint(settings)``; ``await start()`` loads the digest cache (``<data>/caches/<session>-
<side>.cache``), opens the staging store and starts the watcher; ``await stop()`` stops the
watcher and saves the cache. Contract of each operation:

- ``scan(full, have_generation)``: incremental (only the paths the watcher reported dirty, the
  previous snapshot reused elsewhere) unless ``full``, the scan mode is ``full``, there is no
  previous scan, the watcher asked for a full rescan, or the root is not the same directory
  (device and inode) as at the last scan: a replaced root is always scanned whole, so a
  half-seen replacement can never look like a few deletions. ``scan_async(full, fresh)``: every
  scan first drains the watcher (events the kernel already queued join the dirty set: the
  barrier); ``fresh`` (a flush) forces a full scan unless watching is native (inotify on the
  whole tree), since only then do the dirty paths cover every change. ``generation`` counts snapshot changes;
  the snapshot is returned only if it differs from ``have_generation``. ``ScanError`` propagates.
- ``needs(items)``: for each distinct digest, keep it if already staged, else (when at least
  ``REUSE_MIN_ITEMS`` digests are missing: the reverse map costs a pass over the cache) try to
  stage a copy of a local file with that digest (the copy is verified), else report it needed.
- ``supply(requests, max_bytes)``: read content for the other side, at most ``max_bytes`` in
  total (at least one chunk is always returned); a path is opened inside the root only (no
  ``..``, no symlinks in parents). A file that cannot be read is a chunk with ``error``.
- ``receive(chunks)``: append each chunk to the partial file of its digest (offsets must follow
  on); at ``eof`` the digest is verified and the file published in staging. Mismatch, a gap or
  an error chunk discards the partial file and is reported as a problem; nothing unverified is
  ever published.
- ``transition(changes)``: ``actors.sync.transition.transition`` on the root; afterwards the
  changed paths are marked dirty (the next scan re-examines them), the watcher is told, and
  staging is emptied unless staged content was missing.
- The digest cache is saved every ``CACHE_SAVE_INTERVAL`` seconds if it changed, and on stop (it
  is an optimisation: a transition verifies files without a matching record by hashing them).
- ``on_change``: called (from the event loop) whenever the watcher reports changes.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from dataclasses import dataclass, field
from typing import Callable, Optional

import structlog

from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.diff import diff
from mutagen_actors.actors.sync.hashing import new_hasher
from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.model import Change, Counts, Kind, Problem, walk
from mutagen_actors.actors.sync.paths import open_directory, split_path
from mutagen_actors.actors.sync.scan import ScanResult, scan
from mutagen_actors.actors.sync.settings import (
    DEFAULT_DIRECTORY_MODE,
    DEFAULT_FILE_MODE,
    DEFAULT_WATCH_POLLING_INTERVAL,
    HashAlgorithm,
    IgnoreSyntax,
    PermissionsMode,
    ScanMode,
    StageMode,
    SymlinkMode,
    WatchMode,
)
from mutagen_actors.actors.sync.staging import Staging, StagingError, staging_directory
from mutagen_actors.actors.sync.transition import TransitionResult, transition
from mutagen_actors.actors.sync.watching import Watcher
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem, SupplyRequest

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_PARTIAL = ".partial-"
CACHE_SAVE_INTERVAL = 10.0
OWN_WRITES_LIMIT = 1_000  # beyond that, a confirmation cycle is cheaper than the memory
DELTA_LIMIT = 1_000
REUSE_MIN_ITEMS = 8  # local content reuse costs a pass over the cache once it changed


@dataclass
class EndpointSettings:
    """Resolved settings of one side (defaults already applied)."""

    root: str
    session: str
    side: str
    data_directory: str
    hash: HashAlgorithm = HashAlgorithm.XXH128
    ignores: list = field(default_factory=list)
    ignore_syntax: IgnoreSyntax = IgnoreSyntax.MUTAGEN
    ignore_vcs: bool = False
    symlink_mode: SymlinkMode = SymlinkMode.PORTABLE
    permissions_mode: PermissionsMode = PermissionsMode.PORTABLE
    watch_mode: WatchMode = WatchMode.PORTABLE
    watch_polling_interval: int = DEFAULT_WATCH_POLLING_INTERVAL
    scan_mode: ScanMode = ScanMode.ACCELERATED
    stage_mode: StageMode = StageMode.DATA_DIRECTORY
    default_file_mode: int = DEFAULT_FILE_MODE
    default_directory_mode: int = DEFAULT_DIRECTORY_MODE
    default_owner: str = ""
    default_group: str = ""
    max_entry_count: int = 0
    max_staging_file_size: int = 0

    @classmethod
    def from_args(cls, args: dict) -> "EndpointSettings":
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in args.items() if k in known and v not in (None, "")}
        converters = {"hash": HashAlgorithm, "ignore_syntax": IgnoreSyntax,
                      "symlink_mode": SymlinkMode, "permissions_mode": PermissionsMode,
                      "watch_mode": WatchMode, "scan_mode": ScanMode, "stage_mode": StageMode}
        for key, convert in converters.items():
            if key in values:
                values[key] = convert(values[key])
        for key in ("watch_polling_interval", "default_file_mode", "default_directory_mode"):
            if not values.get(key):
                values.pop(key, None)
        return cls(**values)


def cache_path(data_directory: str, session: str, side: str) -> str:
    return os.path.join(data_directory, "caches", f"{session}-{side}.cache")


def same_filesystem_stage_mode(mode: StageMode, root_device: Optional[int],
                               data_device: Optional[int]) -> StageMode:
    """Where to stage, given the configured ``mode`` and the devices of the existing root and
    of the data directory (``None``: unknown). The default (data directory) becomes ``internal``
    (``<root>/.mutagen-temporary-staging-...``, which scans and watchers skip) when the data
    directory is on another filesystem than the root: moving staged files into place is then
    one rename each instead of a copy and a re-read. A root that does not exist yet, or any
    other configured mode, keeps the configured mode."""
    if (mode is StageMode.DATA_DIRECTORY and root_device is not None
            and data_device is not None and root_device != data_device):
        return StageMode.INTERNAL
    return mode


class _Partial:
    __slots__ = ("fd", "path", "hasher", "offset")

    def __init__(self, fd: int, path: str, hasher):
        self.fd, self.path, self.hasher, self.offset = fd, path, hasher, 0


class LocalEndpoint:
    def __init__(self, settings: EndpointSettings, *, on_change: Optional[Callable[[], None]] = None,
                 log=None):
        self.settings = settings
        self.root = os.path.abspath(settings.root)
        self.on_change = on_change or (lambda: None)
        self.log = log or structlog.get_logger("endpoint").bind(side=settings.side)
        self.epoch = secrets.token_hex(8)
        self.ignorer = compile_ignores(list(settings.ignores), settings.ignore_syntax,
                                       settings.ignore_vcs)
        self.cache_file = cache_path(settings.data_directory, settings.session, settings.side)
        self.stage_mode = same_filesystem_stage_mode(
            settings.stage_mode, _device(self.root, nearest=False),
            _device(settings.data_directory, nearest=True))
        self.staging = Staging(
            staging_directory(self.stage_mode, root=self.root, session=settings.session,
                              side=settings.side, data_directory=settings.data_directory),
            settings.hash, max_file_size=settings.max_staging_file_size)
        self.cache = DigestCache(settings.hash)
        self.previous: Optional[ScanResult] = None
        self.dirty: Optional[set] = None  # None: everything
        self.generation = 0
        self.history: dict = {}  # the last two generations' snapshots, for deltas
        self._root_identity = None  # (device, inode) of the root at the last scan
        self.watcher: Optional[Watcher] = None
        self._pump: Optional[asyncio.Task] = None
        self._saver: Optional[asyncio.Task] = None
        self._partials: dict[bytes, _Partial] = {}
        self._cache_dirty = False
        self._own_files: dict = {}
        self.last_scan_full = True  # whether the last scan walked the whole root

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.cache_file), mode=0o700, exist_ok=True)
        self.cache = await asyncio.to_thread(DigestCache.load, self.cache_file, self.settings.hash)
        self.watcher = Watcher(self.root, mode=self.settings.watch_mode,
                               polling_interval=float(self.settings.watch_polling_interval),
                               ignorer=self.ignorer, log=self.log)
        await self.watcher.start()
        loop = asyncio.get_running_loop()
        self._pump = loop.create_task(self._pump_batches())
        self._saver = loop.create_task(self._save_periodically())

    async def stop(self) -> None:
        for task in (self._pump, self._saver):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.watcher is not None:
            await self.watcher.stop()
        self._discard_partials()
        self.save_cache()

    @property
    def watch_state(self) -> str:
        return self.watcher.state if self.watcher is not None else ""

    async def _pump_batches(self) -> None:
        while True:
            batch = await self.watcher.next_batch()
            if batch is None:
                return
            self._absorb(batch)
            if not self._only_own_writes(batch):
                self.on_change()

    def _absorb(self, batch) -> None:
        if batch.rescan_all:
            self.dirty = None
        elif self.dirty is not None:
            self.dirty.update(batch.paths)

    def _only_own_writes(self, batch) -> bool:
        """True when the batch holds only files this endpoint's last transition wrote and that
        are still exactly as it left them (same inode, size, mtime, mode): the events are our
        own, and a cycle would find nothing to do. The paths stay dirty for the next scan."""
        own = self._own_files
        if batch.rescan_all or not batch.paths or not own:
            return False
        for path in batch.paths:
            expected = own.get(path)
            if expected is None:
                return False
            try:
                st = os.lstat(os.path.join(self.root, path))
            except OSError:
                return False
            if (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode) != expected:
                return False
        return True

    async def _save_periodically(self) -> None:
        """The cache is an optimisation: it is saved every ``CACHE_SAVE_INTERVAL`` seconds when it
        changed, and on stop. After a crash an older cache only costs re-hashing."""
        while True:
            await asyncio.sleep(CACHE_SAVE_INTERVAL)
            if self._cache_dirty:
                await asyncio.to_thread(self.save_cache)

    def save_cache(self) -> None:
        if not self._cache_dirty:
            return
        try:
            self.cache.save(self.cache_file)
            self._cache_dirty = False
        except OSError as error:
            self.log.warning("unable to save digest cache", error=str(error))

    # ------------------------------------------------------------------ scan

    def scan(self, full: bool, dirty: Optional[set]) -> ScanResult:
        """Blocking (run in a worker thread by ``scan_async``): scan with ``dirty`` taken from
        ``self.dirty`` by the caller, in the event loop's thread."""
        self.last_scan_full = True
        identity = _identity(self.root)
        incremental = (not full and dirty is not None and self.previous is not None
                       and self.settings.scan_mode is ScanMode.ACCELERATED
                       and identity is not None and identity == self._root_identity)
        try:
            result = scan(self.root, hash=self.settings.hash, ignorer=self.ignorer,
                          symlink_mode=self.settings.symlink_mode,
                          permissions_mode=self.settings.permissions_mode, cache=self.cache,
                          previous=self.previous if incremental else None,
                          dirty=sorted(dirty) if incremental else None,
                          max_entry_count=self.settings.max_entry_count)
        except BaseException:
            self.dirty = None  # the next scan must be complete
            raise
        self._root_identity = identity
        self.last_scan_full = not incremental
        if self.previous is None or result.root != self.previous.root:
            self.generation += 1
            self.history[self.generation] = result.root
            self.history.pop(self.generation - 2, None)
        if result.hashed or self.previous is None:
            self._cache_dirty = True
        self.previous = result
        return result

    async def scan_async(self, full: bool, fresh: bool = False) -> ScanResult:
        """Scan in a worker thread. ``fresh``: the result must include every change made before
        this call (a flush). With native watching, the watcher's queue is drained first (the
        barrier: events already queued by the kernel join the dirty set), so the incremental
        scan stands for a full one; any other watching (polling, none, root absent) cannot
        vouch for that, so the scan is full."""
        if self.watcher is not None:
            batch = self.watcher.drain()
            if batch is not None:
                self._absorb(batch)
            if fresh and not self.watcher.native:
                full = True
        dirty, self.dirty = self.dirty, set()
        return await asyncio.to_thread(self.scan, full, dirty)

    def delta_from(self, generation: int) -> Optional[list[Change]]:
        """Changes turning snapshot ``generation`` into the current one (each
        ``Change(path, None, new)``), or None if that generation is not kept or the delta
        would not be smaller than the snapshot."""
        if generation not in self.history or self.generation not in self.history:
            return None
        changes = diff("", self.history[generation], self.history[self.generation])
        if len(changes) > DELTA_LIMIT:
            return None
        return [Change(change.path, None, change.new) for change in changes]

    def counts(self) -> Counts:
        return self.previous.counts if self.previous is not None else Counts()

    # ------------------------------------------------------------------ staging (receiver)

    def needs(self, items: list[StageItem]) -> list[StageItem]:
        self._discard_partials()
        candidates: list[StageItem] = []
        seen: set[bytes] = set()
        for item in items:
            if item.digest in seen:
                continue
            seen.add(item.digest)
            try:
                if self.staging.has(item.digest):
                    continue
            except StagingError:
                needed.append(item)
                continue
            candidates.append(item)
        if len(candidates) < REUSE_MIN_ITEMS:
            return candidates  # a few files: not worth rebuilding the digest reverse map
        return [item for item in candidates if not self._reuse_local(item.digest)]

    def _reuse_local(self, digest: bytes) -> bool:
        for path in self.cache.paths_for(digest)[:4]:
            try:
                components = split_path(path)
                root_fd = os.open(self.root, _ROOT_FLAGS)
                try:
                    parent = open_directory(root_fd, components[:-1])
                finally:
                    os.close(root_fd)
                try:
                    self.staging.receive_file(digest, components[-1], dir_fd=parent)
                finally:
                    os.close(parent)
                return True
            except (OSError, ValueError):
                continue
        return False

    def receive(self, chunks: list[Chunk]) -> tuple[int, list[Problem]]:
        completed = 0
        problems: list[Problem] = []
        for chunk in chunks:
            try:
                if self._receive_chunk(chunk):
                    completed += 1
            except (OSError, StagingError) as error:
                self._drop_partial(chunk.digest)
                problems.append(Problem(chunk.path, str(error)))
        return completed, problems

    def _receive_chunk(self, chunk: Chunk) -> bool:
        if chunk.error:
            self._drop_partial(chunk.digest)
            raise StagingError(chunk.error)
        partial = self._partials.get(chunk.digest)
        if partial is None:
            if chunk.offset != 0:
                raise StagingError(f"content of {chunk.path!r} arrived out of order")
            final = self.staging.path_for(chunk.digest)
            os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
            temporary = f"{final}{_PARTIAL}{secrets.token_hex(6)}"
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            partial = self._partials[chunk.digest] = _Partial(
                fd, temporary, new_hasher(self.settings.hash))
        if chunk.offset != partial.offset:
            raise StagingError(f"content of {chunk.path!r} arrived out of order")
        limit = self.settings.max_staging_file_size
        if limit and partial.offset + len(chunk.data) > limit:
            raise StagingError(f"staged file exceeds the maximum staging file size ({limit} bytes)")
        view = memoryview(chunk.data)
        while view:
            view = view[os.write(partial.fd, view):]
        partial.hasher.update(chunk.data)
        partial.offset += len(chunk.data)
        if not chunk.eof:
            return False
        del self._partials[chunk.digest]
        os.close(partial.fd)
        if partial.hasher.digest() != chunk.digest:
            _unlink(partial.path)
            raise StagingError("received content does not match its digest (changed while sent?)")
        os.rename(partial.path, self.staging.path_for(chunk.digest))
        return True

    def _drop_partial(self, digest: bytes) -> None:
        partial = self._partials.pop(digest, None)
        if partial is not None:
            os.close(partial.fd)
            _unlink(partial.path)

    def _discard_partials(self) -> None:
        for digest in list(self._partials):
            self._drop_partial(digest)

    # ------------------------------------------------------------------ supplying (sender)

    def sizes(self, paths: list[str]) -> list[int]:
        sizes = []
        for path in paths:
            record = self.cache.get(path)
            sizes.append(record[0] if record is not None else -1)
        return sizes

    def supply(self, requests: list[SupplyRequest], max_bytes: int) -> list[Chunk]:
        chunks: list[Chunk] = []
        budget = max(1, max_bytes)
        try:
            root_fd = os.open(self.root, _ROOT_FLAGS)
        except OSError as error:
            return [Chunk(r.path, r.digest, r.offset, 0, b"", True,
                          f"unable to open synchronization root: {error.strerror}")
                    for r in requests]
        try:
            for request in requests:
                if budget <= 0:
                    break
                chunk = self._read(root_fd, request, budget)
                budget -= len(chunk.data)
                chunks.append(chunk)
        finally:
            os.close(root_fd)
        return chunks

    def _read(self, root_fd: int, request: SupplyRequest, budget: int) -> Chunk:
        try:
            components = split_path(request.path)
            if not components:
                raise ValueError("the root is not a file")
            parent = open_directory(root_fd, components[:-1])
            try:
                fd = os.open(components[-1], _READ_FLAGS, dir_fd=parent)
            finally:
                os.close(parent)
            try:
                size = os.fstat(fd).st_size
                data = os.pread(fd, min(budget, max(0, size - request.offset)), request.offset)
            finally:
                os.close(fd)
        except (OSError, ValueError) as error:
            text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            return Chunk(request.path, request.digest, request.offset, 0, b"", True,
                         f"unable to read file: {text}")
        end = request.offset + len(data)
        return Chunk(request.path, request.digest, request.offset, size, data, end >= size)

    # ------------------------------------------------------------------ transition

    def transition(self, changes: list[Change]) -> TransitionResult:
        """Blocking: run in a worker thread."""
        settings = self.settings
        result = transition(
            self.root, changes, cache=self.cache, staging=self.staging, hash=settings.hash,
            symlink_mode=settings.symlink_mode, permissions_mode=settings.permissions_mode,
            default_file_mode=settings.default_file_mode,
            default_directory_mode=settings.default_directory_mode,
            default_owner=settings.default_owner or None,
            default_group=settings.default_group or None)
        self._cache_dirty = True
        self._own_files = self._written_files(result.results)
        if not result.missing_staged:
            self.staging.wipe()
        return result

    def _written_files(self, results: list[Change]) -> dict:
        written = {}
        for change in results:
            if change.new is None or change.new == change.old:
                continue
            for path, entry in walk(change.new, change.path):
                if entry.kind != Kind.FILE:
                    continue
                try:
                    st = os.lstat(os.path.join(self.root, path))
                except OSError:
                    continue
                written[path] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
                if len(written) > OWN_WRITES_LIMIT:
                    return {}
        return written

    async def transition_async(self, changes: list[Change]) -> TransitionResult:
        result = await asyncio.to_thread(self.transition, changes)
        if self.dirty is not None:
            self.dirty.update(change.path for change in changes)
        if self.watcher is not None:
            self.watcher.note_changed([change.path for change in changes])
        return result


def _device(path: str, *, nearest: bool) -> Optional[int]:
    """The device of directory ``path`` (with ``nearest``: of its nearest existing ancestor,
    where it would be created); None if there is none."""
    path = os.path.abspath(path)
    while True:
        try:
            st = os.stat(path)
            return st.st_dev if stat.S_ISDIR(st.st_mode) else None
        except OSError:
            parent = os.path.dirname(path)
            if not nearest or parent == path:
                return None
            path = parent


def _identity(path: str):
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

