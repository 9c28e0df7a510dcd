"""Filesystem watching for one synchronization root: events -> batches of dirty paths.

Contract
--------
``Watcher(root, mode=..., polling_interval=...)`` turns activity under ``root`` into
:class:`WatchBatch` values (root-relative dirty paths, or ``rescan_all``) that the
endpoint feeds to its incremental scan. ``await start()`` returns once the watches are in
place: any change made after it returns is reported by a later batch. A batch is only
handed out after the watches covering its paths exist, so "scan the batch's paths" never
misses a change (a directory that appeared is reported as a whole, because files may have
been created in it before its watch was added).

Modes (``settings.WatchMode``):

* ``portable``: native inotify watches, one per non-ignored directory, events coalesced
  over ``coalesce`` seconds (10 ms) after the first one. When the kernel's watch limit is
  hit (ENOSPC from ``inotify_add_watch``; ``fs.inotify.max_user_watches``), all watches
  are released and the watcher polls instead: a ``rescan_all`` batch every
  ``polling_interval`` seconds, and :attr:`Watcher.state` says why. It stays in polling
  mode until it is restarted (a session resume creates a new watcher).
* ``force-poll``: a ``rescan_all`` batch every ``polling_interval`` seconds.
* ``no-watch``: never produces a batch (``next_batch`` waits for its timeout).

Failure rules: an inotify queue overflow, the root being deleted, moved, replaced or
unmounted, and (re-)creation of an absent root all produce a ``rescan_all`` batch after
the watches were re-established: events are never lost silently. Directories that vanish
or cannot be read while being watched are skipped (the scanner reports problems for
them). Names starting with ``settings.TEMPORARY_PREFIX`` are never reported nor watched;
ignored directories (per the session's ``Ignorer``) are not watched unless the ignorer
may re-include content below them (docker syntax). Directories on another filesystem
than the root are not watched (the scanner does not cross filesystems either).

Why inotify_simple and not watchdog
-----------------------------------
watchdog's observer hides queue overflows (it only logs a warning and re-adds every
watch), and with its default event set it livelocks on a 5,000-directory tree (its own
directory walk produces open/close events that overflow the queue: measured in the
team's shared library notes). A small recursive watcher on ``inotify_simple`` gives us:
``IN_Q_OVERFLOW`` as an ordinary event to turn into ``rescan_all``; a mask without
``IN_OPEN``/``IN_ACCESS``/``IN_CLOSE_NOWRITE`` so our walk is silent; control over each
``add_watch`` (skip ignored and temporary directories, see ENOSPC at the exact call and
fall back to polling); and no thread: the inotify descriptor is read from the event loop
with ``loop.add_reader``, so an idle watcher costs no CPU. The initial walk runs in a
worker thread (the loop stays responsive on huge trees); re-walks after an overflow or a
root change run in the loop (they are rare, ~0.1 s per 5,000 directories).

Concurrency: use one Watcher from one event loop; do not call other methods while
``start()`` is running.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from typing import Iterable

import structlog
from inotify_simple import INotify

from .settings import WatchMode
from .watch_events import (
    ANCESTOR_MASK,
    IN_IGNORED,
    IN_Q_OVERFLOW,
    TREE_MASK,
    IgnorerLike,
    WatchBatch,
    collapse,
    describe_state,
    interpret,
    is_temporary,
    join,
    parent,
    reportable,
    watchable,
)

__all__ = ["WatchBatch", "Watcher", "watch_limit"]

_NATIVE = ("tree", "awaiting-root", "root-not-directory")
_POLLING = ("force-poll", "fallback-poll")
_MAX_ESTABLISH_ATTEMPTS = 32
_MAX_DRAIN_READS = 64  # a writer faster than we read must not keep a barrier going for ever


class _WatchLimitReached(Exception):
    pass


class _RootUnwatchable(Exception):
    def __init__(self, error: OSError):
        super().__init__(error)
        self.error = error


def watch_limit() -> int | None:
    """The effective per-user inotify watch limit (the smaller of the namespace's and the
    system's), or None if it cannot be read."""
    values = []
    for path in ("/proc/sys/user/max_inotify_watches", "/proc/sys/fs/inotify/max_user_watches"):
        try:
            with open(path) as handle:
                values.append(int(handle.read().strip()))
        except (OSError, ValueError):
            continue
    return min(values) if values else None


class Watcher:
    """Watches one synchronization root; see the module docstring for the contract."""

    def __init__(
        self,
        root: str,
        *,
        mode: WatchMode,
        polling_interval: float,
        ignorer: IgnorerLike | None = None,
        coalesce: float = 0.01,
        log=None,
    ) -> None:
        if polling_interval <= 0:
            raise ValueError(f"watch polling interval must be positive, got {polling_interval!r}")
        if coalesce < 0:
            raise ValueError(f"coalescing window must not be negative, got {coalesce!r}")
        self._root = os.path.abspath(os.fspath(root))
        self._mode = WatchMode(mode)
        self._interval = float(polling_interval)
        self._ignorer = ignorer
        self._coalesce = coalesce
        base = log if log is not None else structlog.get_logger("mutagen_actors.watching")
        self._log = base.bind(root=self._root) if hasattr(base, "bind") else base

        self._mechanism = "not-started"
        self._reason: str | None = None
        self._inotify: INotify | None = None
        self._reading = False
        self._held = False  # hold(): the reader stays off until release()
        self._dir_by_wd: dict[int, str] = {}
        self._wd_by_dir: dict[str, int] = {}
        self._root_dev: int | None = None
        # awaiting-root / root-not-directory: (wd, absolute ancestor, next component)
        self._ancestor: tuple[int, str, str] | None = None

        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        self._pending: set[str] = set()
        self._pending_all = False
        self._window: asyncio.TimerHandle | None = None
        self._poll: asyncio.TimerHandle | None = None
        self._stopped = False
        self._stats = {"events": 0, "batches": 0, "overflows": 0, "rewatches": 0}

    # ------------------------------------------------------------------ public interface

    @property
    def root(self) -> str:
        return self._root

    @property
    def state(self) -> str:
        """Human text for the session state, e.g. ``"watching (inotify)"``."""
        ancestor = self._ancestor[1] if self._ancestor else None
        return describe_state(
            self._mechanism, polling_interval=self._interval, reason=self._reason, ancestor=ancestor
        )

    def statistics(self) -> dict[str, int | str]:
        """Counters for the actor's statistics: events read, batches handed out, queue
        overflows, watch re-establishments, current watch count and mechanism."""
        return {**self._stats, "watches": len(self._dir_by_wd), "mechanism": self._mechanism}

    async def start(self) -> None:
        """Establish the watches (or the polling timer); returns once they are in place."""
        if self._loop is not None:
            raise RuntimeError("watcher already started")
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        if self._mode is WatchMode.NO_WATCH:
            self._mechanism = "no-watch"
        elif self._mode is WatchMode.FORCE_POLL:
            self._mechanism = "force-poll"
            self._schedule_poll()
        else:
            await asyncio.to_thread(self._establish)
            self._arm()
        self._log.info("watcher started", state=self.state, watches=len(self._dir_by_wd))

    async def next_batch(self, timeout: float | None = None) -> WatchBatch | None:
        """The next batch of dirty paths; None if ``timeout`` seconds pass without one or
        the watcher is stopped. Batches that pile up while nobody asks are merged."""
        if self._loop is None or self._ready is None:
            raise RuntimeError("watcher not started")
        deadline = None if timeout is None else self._loop.time() + timeout
        while True:
            if self._ready.is_set():
                batch = self._take()
                if batch is not None:
                    return batch
            if self._stopped:
                return None
            remaining = None if deadline is None else deadline - self._loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                await asyncio.wait_for(self._ready.wait(), remaining)
            except asyncio.TimeoutError:
                return None

    @property
    def native(self) -> bool:
        """True while native recursive watching covers the whole tree (mechanism ``tree``):
        only then can an incremental scan of the reported paths stand for a full one. False
        when polling (forced or after a fallback), not watching, stopped, or while the root is
        absent or not a directory."""
        return self._mechanism == "tree" and not self._stopped

    def drain(self) -> WatchBatch | None:
        """Barrier for "scan now and see every change made before now": read every event the
        kernel has queued (inotify queues them synchronously with the change, so a change
        that completed before this call is in the queue) and hand out what is pending at once,
        without waiting for the coalescing window. Returns that batch (``rescan_all`` after an
        overflow or a re-establishment), or None when nothing is pending. Runs in the event
        loop's thread; costs one non-blocking read per queued buffer."""
        if self._loop is None or self._ready is None or self._stopped:
            return None
        if self._inotify is not None and self._mechanism in _NATIVE:
            for _ in range(_MAX_DRAIN_READS):
                before = self._stats["events"]
                self._on_readable()
                if self._stats["events"] == before or self._inotify is None:
                    break
        if self._mechanism in _POLLING:
            return None  # a poll tick's rescan_all stays for the pump; the caller scans in full
        return self._take()

    async def stop(self) -> None:
        """Release every watch and timer; pending and later ``next_batch`` calls return None."""
        self._stopped = True
        for handle in (self._window, self._poll):
            if handle is not None:
                handle.cancel()
        self._window = self._poll = None
        self._disarm()
        self._mechanism = "stopped"
        self._reason = None
        if self._ready is not None:
            self._ready.set()

    def note_changed(self, paths: Iterable[str]) -> None:
        """The endpoint changed these root-relative paths on disk.

        Native watching: the paths join the next batch (re-check set) and directories
        that are not watched yet get their watches; if the root was absent and now exists,
        the tree watches are established (and a ``rescan_all`` batch follows). Polling:
        a poll (``rescan_all`` batch) is triggered right away, so the endpoint confirms the
        new state and sees edits made during the transition.
        """
        if self._stopped or self._loop is None:
            return
        if self._mechanism in _POLLING:
            self._mark_all()
            return
        if self._mechanism in ("awaiting-root", "root-not-directory"):
            if self._situation() != self._current_situation():
                self._reestablish("root changed by the endpoint")
            return
        if self._mechanism != "tree":
            return
        for path in paths:
            try:
                is_dir = stat.S_ISDIR(os.lstat(self._abs(path)).st_mode)
            except OSError:
                is_dir = False
            if not reportable(path, is_dir, self._ignorer):
                continue
            self._pending.add(path)
            if is_dir and path and path not in self._wd_by_dir and parent(path) in self._wd_by_dir:
                try:
                    self._watch_subtree(path)
                except _WatchLimitReached:
                    self._switch_to_polling_for_limit()
                    return

    def hold(self) -> None:
        """Stop reading events until :meth:`release`, for the time the endpoint itself changes
        the tree (a transition in a worker thread). Handling the events of its writes
        meanwhile (watching every directory it created: a walk in the event loop's thread)
        only competes with it for the GIL: a 100k-file initial sync's transition took 1.36 s
        instead of 0.9. Nothing is lost: the kernel keeps queuing the events (an overflow
        becomes a ``rescan_all`` as always) and :meth:`drain` still reads them. No effect on
        polling or when not watching."""
        self._held = True
        if self._reading and self._loop is not None and self._inotify is not None:
            self._loop.remove_reader(self._inotify.fileno())
        self._reading = False

    def release(self) -> None:
        """Read events again after :meth:`hold`; what queued meanwhile is handled now."""
        if not self._held:
            return
        self._held = False
        if self._stopped or self._loop is None:
            return
        if not self._reading:
            self._arm()
            if self._reading:
                self._on_readable()

    # ------------------------------------------------------------------ establishing

    def _abs(self, path: str) -> str:
        return os.path.join(self._root, path) if path else self._root

    def _new_instance(self) -> INotify:
        self._close_instance()
        self._inotify = INotify(nonblocking=True)
        return self._inotify

    def _close_instance(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
        self._inotify = None
        self._dir_by_wd.clear()
        self._wd_by_dir.clear()
        self._ancestor = None

    def _situation(self) -> tuple[str, str, str]:
        """(kind of root, nearest existing ancestor directory, next component)."""
        try:
            mode = os.lstat(self._root).st_mode
            kind = "directory" if stat.S_ISDIR(mode) else "other"
        except OSError:
            kind = "absent"
        if kind == "directory":
            return kind, "", ""
        child = self._root
        ancestor = os.path.dirname(child)
        while ancestor != child and not os.path.isdir(ancestor):
            child, ancestor = ancestor, os.path.dirname(ancestor)
        return kind, ancestor, os.path.basename(child)

    def _current_situation(self) -> tuple[str, str, str]:
        if self._mechanism == "tree":
            return "directory", "", ""
        if self._ancestor is None:
            return "unknown", "", ""
        kind = "absent" if self._mechanism == "awaiting-root" else "other"
        return kind, self._ancestor[1], self._ancestor[2]

    def _establish(self) -> None:
        """Set up native watches from scratch (no event-loop calls: runs in a thread at
        start). Ends in mechanism tree / awaiting-root / root-not-directory, or in
        fallback-poll with a reason."""
        for _ in range(_MAX_ESTABLISH_ATTEMPTS):
            try:
                instance = self._new_instance()
            except OSError as error:
                self._fall_back(self._instance_error_reason(error))
                return
            situation = self._situation()
            kind, ancestor, child = situation
            try:
                if kind == "directory":
                    self._root_dev = os.lstat(self._root).st_dev
                    self._watch_subtree("")
                    self._mechanism = "tree"
                    return
                wd = instance.add_watch(ancestor, ANCESTOR_MASK)
            except _WatchLimitReached:
                self._switch_to_polling_for_limit(in_thread=True)
                return
            except (_RootUnwatchable, FileNotFoundError, NotADirectoryError) as error:
                if isinstance(error, _RootUnwatchable) and error.error.errno not in (
                    errno.ENOENT, errno.ENOTDIR
                ):
                    self._fall_back(f"cannot watch the root: {error.error.strerror}")
                    return
                continue  # the root or the ancestor changed under us: look again
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    self._switch_to_polling_for_limit(in_thread=True)
                else:
                    self._fall_back(f"cannot watch {ancestor}: {error.strerror}")
                return
            self._ancestor = (wd, ancestor, child)
            self._mechanism = "awaiting-root" if kind == "absent" else "root-not-directory"
            if self._situation() == situation:
                return
        self._fall_back("the root kept changing while watches were being set up")

    def _watch_subtree(self, top: str) -> None:
        """Watch ``top`` and every watchable directory below it (depth first).

        Raises _WatchLimitReached on ENOSPC, _RootUnwatchable if the root itself cannot be
        watched; other directories that vanish or cannot be read are skipped."""
        assert self._inotify is not None
        add_watch = self._inotify.add_watch
        ignorer = self._ignorer
        root_dev = self._root_dev
        stack = [top]
        while stack:
            directory = stack.pop()
            absolute = self._abs(directory)
            try:
                wd = add_watch(absolute, TREE_MASK)
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    raise _WatchLimitReached() from error
                if not directory:
                    raise _RootUnwatchable(error) from error
                continue
            previous = self._dir_by_wd.get(wd)
            if previous is not None and previous != directory and self._wd_by_dir.get(previous) == wd:
                del self._wd_by_dir[previous]
            self._dir_by_wd[wd] = directory
            self._wd_by_dir[directory] = wd
            try:
                with os.scandir(absolute) as entries:
                    for entry in entries:
                        try:
                            if not entry.is_dir(follow_symlinks=False):
                                continue  # d_type answers this without a system call
                            name = entry.name
                            if is_temporary(name):
                                continue
                            child = join(directory, name)
                            if not watchable(child, ignorer):
                                continue
                            if root_dev is not None and entry.stat(follow_symlinks=False).st_dev != root_dev:
                                continue
                        except OSError:
                            continue
                        stack.append(child)
            except OSError:
                continue

    def _unwatch_subtree(self, top: str) -> None:
        assert self._inotify is not None
        prefix = top + "/"
        for directory in [d for d in self._wd_by_dir if d == top or d.startswith(prefix)]:
            wd = self._wd_by_dir.pop(directory)
            self._dir_by_wd.pop(wd, None)
            try:
                self._inotify.rm_watch(wd)
            except OSError:
                pass  # already gone with its directory

    @staticmethod
    def _instance_error_reason(error: OSError) -> str:
        if error.errno == errno.EMFILE:
            return "inotify instance limit reached (fs.inotify.max_user_instances)"
        return f"inotify unavailable: {error.strerror}"

    def _fall_back(self, reason: str) -> None:
        self._close_instance()
        self._mechanism = "fallback-poll"
        self._reason = reason
        self._log.warning("native watching unavailable, polling instead",
                          reason=reason, polling_interval=self._interval)

    def _switch_to_polling_for_limit(self, in_thread: bool = False) -> None:
        limit = watch_limit()
        reason = "inotify watch limit reached" + (f": {limit} watches" if limit is not None else "")
        if in_thread:
            self._fall_back(reason)
            return
        self._disarm()
        self._fall_back(reason)
        self._arm()
        self._mark_all()  # events may have been missed while watches were incomplete

    # ------------------------------------------------------------------ loop plumbing

    def _arm(self) -> None:
        assert self._loop is not None
        if self._mechanism in _NATIVE and self._inotify is not None:
            if not self._held:
                self._loop.add_reader(self._inotify.fileno(), self._on_readable)
                self._reading = True
        elif self._mechanism in _POLLING:
            self._schedule_poll()

    def _disarm(self) -> None:
        if self._reading and self._loop is not None and self._inotify is not None:
            self._loop.remove_reader(self._inotify.fileno())
        self._reading = False
        self._close_instance()

    def _reestablish(self, why: str) -> None:
        self._stats["rewatches"] += 1
        self._log.info("re-establishing watches", reason=why)
        self._disarm()
        try:
            self._establish()
        except Exception as error:
            self._log.exception("re-establishing watches failed")
            self._fall_back(f"watching failed: {error}")
        self._arm()
        self._mark_all()

    def _schedule_poll(self) -> None:
        assert self._loop is not None
        if self._poll is None and not self._stopped:
            self._poll = self._loop.call_later(self._interval, self._poll_tick)

    def _poll_tick(self) -> None:
        self._poll = None
        self._pending_all = True
        self._pending.clear()
        assert self._ready is not None
        self._ready.set()
        self._schedule_poll()

    def _mark_all(self) -> None:
        self._pending_all = True
        self._pending.clear()
        self._open_window()

    def _open_window(self) -> None:
        assert self._loop is not None and self._ready is not None
        if self._window is not None or self._ready.is_set():
            return
        if self._coalesce <= 0:
            self._ready.set()
        else:
            self._window = self._loop.call_later(self._coalesce, self._close_window)

    def _close_window(self) -> None:
        self._window = None
        if (self._pending or self._pending_all) and self._ready is not None:
            self._ready.set()

    def _take(self) -> WatchBatch | None:
        assert self._ready is not None
        self._ready.clear()
        if self._window is not None:
            self._window.cancel()
            self._window = None
        if self._pending_all:
            batch = WatchBatch(frozenset(), True)
        elif self._pending:
            batch = WatchBatch(collapse(self._pending), False)
        else:
            return None
        self._pending_all = False
        self._pending.clear()
        self._stats["batches"] += 1
        return batch

    # ------------------------------------------------------------------ events

    def _on_readable(self) -> None:
        if self._inotify is None:
            return
        try:
            events = self._inotify.read(timeout=0)
        except OSError as error:
            self._log.warning("reading inotify events failed", error=str(error))
            self._reestablish("read error")
            return
        self._stats["events"] += len(events)
        try:
            if self._mechanism == "tree":
                self._on_tree_events(events)
            else:
                self._on_ancestor_events(events)
        except Exception:  # never leave the session believing nothing changed
            self._log.exception("handling inotify events failed; rescanning everything")
            self._reestablish("internal error while handling events")

    def _on_tree_events(self, events) -> None:
        changed = False
        rewatch: str | None = None
        limit = False
        for event in events:
            directory = self._dir_by_wd.get(event.wd)
            reaction = interpret(event.mask, directory, event.name)
            if reaction.overflow:
                self._stats["overflows"] += 1
                rewatch = "inotify event queue overflow"
                continue
            if reaction.watch_gone:
                if directory == "":
                    rewatch = "the root was deleted, moved or unmounted"
                elif event.mask & IN_IGNORED and self._wd_by_dir.get(directory) == event.wd:
                    del self._wd_by_dir[directory]  # IN_IGNORED: the kernel dropped it
                if event.mask & IN_IGNORED:
                    self._dir_by_wd.pop(event.wd, None)
                continue
            path = reaction.report
            if path is None or rewatch is not None or limit:
                continue
            if not reportable(path, reaction.is_dir, self._ignorer):
                continue
            self._pending.add(path)
            changed = True
            if reaction.unwatch_subtree:
                self._unwatch_subtree(path)
            if reaction.watch_subtree:
                try:
                    self._watch_subtree(path)
                except _WatchLimitReached:
                    limit = True
        if rewatch is not None:
            self._reestablish(rewatch)
        elif limit:
            self._switch_to_polling_for_limit()
        elif changed:
            self._open_window()

    def _on_ancestor_events(self, events) -> None:
        assert self._ancestor is not None
        wd, _, child = self._ancestor
        relevant = any(
            event.mask & IN_Q_OVERFLOW or (event.wd == wd and event.name in ("", child))
            for event in events
        )
        if not relevant:
            return
        if self._situation() != self._current_situation():
            self._reestablish("the root or its parent changed")
        else:
            self._mark_all()  # e.g. a file root was modified
