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
- ``needs(items)``, ``receive(chunks)`` / ``receive_chunks(chunks)``, ``sizes(paths)``,
  ``supply(requests, max_bytes)``: the staging pipeline, receiver and sender halves (reuse ->
  delta -> resume), in ``agent.transfer`` (``Receiver``, ``Supplier``): what it says there. Paths
  are opened inside the root only (no ``..``, no symlinks in parents); nothing unverified is ever
  published in staging; partial content stays in staging for resuming across stops.
- ``transition(changes)``: ``actors.sync.transition.transition`` on the root; afterwards the
  changed paths are marked dirty (the next scan re-examines them), the watcher is told, and
  staging is emptied unless staged content was missing. Staged content that no longer matches
  its digest (damaged on disk) is dropped from staging and reported missing, so the next cycle
  fetches it again.
- The digest cache is saved every ``CACHE_SAVE_INTERVAL`` seconds if it changed, and on stop (it
  is an optimisation: a transition verifies files without a matching record by hashing them).
- ``on_change``: called (from the event loop) whenever the watcher reports changes.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import structlog

from mutagen_actors.actors.sync.apply import apply_changes
from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.diff import diff
from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.model import Change, Counts, Entry, Kind, Problem, walk
from mutagen_actors.actors.sync.paths import directory_device
from mutagen_actors.actors.sync.scan import ScanResult, scan
from mutagen_actors.actors.sync.sharing import share
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
from mutagen_actors.actors.sync.permissions import new_file_mode
from mutagen_actors.actors.sync.staging import Staging, staging_directory
from mutagen_actors.actors.sync.transition import STAGED_MISMATCH, TransitionResult, transition
from mutagen_actors.actors.sync.watching import Watcher
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem, SupplyRequest

from .memory import keep_trimmable, trim
from .transfer import REUSE_MIN_ITEMS, Receiver, Supplier  # noqa: F401 - REUSE_MIN_ITEMS: API

CACHE_SAVE_INTERVAL = 10.0
TRIM_AFTER_CPU = 0.5  # seconds of CPU used since the last trim that make a quiet tick trim
TIDY_TICK = 1.0
QUIET_CPU = 0.05  # at most this much CPU in the last tick: quiet
OWN_WRITES_LIMIT = 1_000  # beyond that, a confirmation cycle is cheaper than the memory
DELTA_LIMIT = 1_000


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
    one rename each instead of a copy and a re-read. A root that does not exist yet (or that
    this user cannot write: pass None), or any other configured mode, keeps the configured
    mode."""
    if (mode is StageMode.DATA_DIRECTORY and root_device is not None
            and data_device is not None and root_device != data_device):
        return StageMode.INTERNAL
    return mode


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
            settings.stage_mode,
            directory_device(self.root, nearest=False) if os.access(self.root, os.W_OK) else None,
            directory_device(settings.data_directory, nearest=True))
        self.staging = Staging(
            staging_directory(self.stage_mode, root=self.root, session=settings.session,
                              side=settings.side, data_directory=settings.data_directory),
            settings.hash, max_file_size=settings.max_staging_file_size,
            # Staged files get the mode a new file gets (the store's 0700 directories protect
            # them): the transition then changes no mode but an executable's or a manual one.
            file_mode=new_file_mode(settings.default_file_mode, False,
                                    PermissionsMode(settings.permissions_mode)))
        self.cache = DigestCache(settings.hash)
        self.previous: Optional[ScanResult] = None
        self.dirty: Optional[set] = None  # None: everything
        self.generation = 0
        self.history: dict = {}  # the last two generations' snapshots, for deltas
        self._root_identity = None  # (device, inode) of the root at the last scan
        self.watcher: Optional[Watcher] = None
        self._pump: Optional[asyncio.Task] = None
        self._saver: Optional[asyncio.Task] = None
        self.receiver = Receiver(self)
        self.supplier = Supplier(self)
        self._cache_dirty = False
        self._own_files: dict = {}
        self._written: Optional[Entry] = None  # the tree the last transition left (see scan)
        self.last_scan_full = True  # whether the last scan walked the whole root

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        keep_trimmable()  # before the first scan's worker thread allocates: see agent.memory
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
        self.receiver.close()  # what was received so far stays for resuming
        self.supplier.close()
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
        changed, and on stop. After a crash an older cache only costs re-hashing.

        The same loop gives freed memory back to the system (a full collection, which empties
        CPython's free lists, then ``agent.memory.trim``) once the process has worked
        (``TRIM_AFTER_CPU`` seconds of CPU since the last time) and then been quiet for a tick
        (``TIDY_TICK``): scans, staging batches and change lists free big buffers that glibc
        would otherwise keep. The daemon's actors get the same from their runtime; this is for
        the remote agent. Idle, a tick costs one clock read."""
        loop = asyncio.get_running_loop()
        cpu_at_trim = cpu_at_tick = time.process_time()
        saved_at = loop.time()
        while True:
            await asyncio.sleep(TIDY_TICK)
            cpu = time.process_time()
            if cpu - cpu_at_trim > TRIM_AFTER_CPU and cpu - cpu_at_tick < QUIET_CPU:
                gc.collect()
                await asyncio.to_thread(trim)
                cpu = cpu_at_trim = time.process_time()
            cpu_at_tick = cpu
            if loop.time() - saved_at >= CACHE_SAVE_INTERVAL:
                saved_at = loop.time()
                if self._cache_dirty:
                    await asyncio.to_thread(self.save_cache)
                    # Encoding the cache freed a few MB after the last tidy (6.8 MB resident
                    # in the agent after a 100k-file initial sync).
                    await asyncio.to_thread(trim)

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
                          max_entry_count=self.settings.max_entry_count,
                          reuse=self._reuse_tree())
        except BaseException:
            self.dirty = None  # the next scan must be complete
            raise
        self._written = None
        self._root_identity = identity
        self.last_scan_full = not incremental
        if self.previous is not None:
            # Equal subtrees become the previous snapshot's objects: the history (and the next
            # incremental scan) then holds one copy of what did not change, not two.
            result.root = share(result.root, self.previous.root)
        if self.previous is None or result.root is not self.previous.root:
            self.generation += 1
            self.history[self.generation] = result.root
            self.history.pop(self.generation - 2, None)
        if result.hashed or self.previous is None:
            self._cache_dirty = True
        self.previous = result
        return result

    def _reuse_tree(self) -> Optional[Entry]:
        """The tree whose entries the next scan reuses where equal: after a transition, the
        previous snapshot with the transition's results applied (the scan then holds the
        written entries, already in memory, instead of building a copy of them and freeing
        the originals, which left the heap fragmented: ~20 MB after a 100k-file initial
        sync); otherwise the previous snapshot."""
        if self._written is not None:
            return self._written
        return self.previous.root if self.previous is not None else None

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
    # reuse -> delta -> resume: see ``agent.transfer``

    def needs(self, items: list[StageItem]) -> list[StageItem]:
        return self.receiver.needs(items)

    def receive(self, chunks: list[Chunk]) -> tuple[int, list[Problem]]:
        completed, problems, _refetch = self.receiver.receive(chunks)
        return completed, problems

    def receive_chunks(self, chunks: list[Chunk]) -> tuple[int, list[Problem], list[StageItem]]:
        """``receive`` with the items to fetch again whole (see ``agent.transfer``)."""
        return self.receiver.receive(chunks)

    # ------------------------------------------------------------------ supplying (sender)

    def sizes(self, paths: list[str]) -> list[int]:
        return self.supplier.sizes(paths)

    def supply(self, requests: list[SupplyRequest], max_bytes: int) -> list[Chunk]:
        return self.supplier.supply(requests, max_bytes)

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
        self._written = self._written_tree(result.results)
        result = self._refetch_mismatched(changes, result)
        if not result.missing_staged:
            self.staging.wipe()
        return result

    def _refetch_mismatched(self, changes: list[Change], result: TransitionResult) -> TransitionResult:
        """Staged content that did not match its digest (damaged on disk after it was staged) was
        not used; drop it from staging and report it missing, so the next cycle fetches it again
        instead of finding the damaged copy staged."""
        damaged = {problem.path for problem in result.problems if problem.error == STAGED_MISMATCH}
        if not damaged:
            return result
        for change in changes:
            if change.new is None:
                continue
            for path, entry in walk(change.new, change.path):
                if path in damaged and entry.kind == Kind.FILE:
                    self.staging.discard(entry.digest)
        return result._replace(missing_staged=True)

    def _written_tree(self, results: list[Change]) -> Optional[Entry]:
        """The previous snapshot with ``results`` applied (memory only: see ``_reuse_tree``);
        None when they do not apply to it."""
        if self.previous is None or self.previous.root is None or not results:
            return None
        try:
            return apply_changes(self.previous.root,
                                 [Change(change.path, None, change.new) for change in results])
        except (ValueError, AttributeError):
            return None

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
        """``transition`` in a worker thread, with the watcher held meanwhile (``Watcher.hold``:
        the events of our own writes wait in the kernel's queue instead of competing with the
        transition for the GIL). The changed paths are dirty before this returns; the watcher
        is released and told of them (``note_changed``: watches for the directories created)
        by a callback that runs after this step of the event loop, in which the caller hands
        the reply to its transport: that work, a walk of every new directory (0.15 s per 5,000
        of them), is not part of the transition's answer. It still comes before any request
        that arrives later, and a scan's ``drain`` reads queued events in any case."""
        watcher = self.watcher
        if watcher is not None:
            watcher.hold()
        try:
            return await asyncio.to_thread(self.transition, changes)
        finally:
            paths = [change.path for change in changes]
            if self.dirty is not None:
                self.dirty.update(paths)
            if watcher is not None:
                asyncio.get_running_loop().call_soon(_tell_watcher, watcher, paths)


def _tell_watcher(watcher: Watcher, paths: list[str]) -> None:
    """After a transition: read the events it queued, then note its paths."""
    watcher.release()
    watcher.note_changed(paths)


def _identity(path: str):
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
