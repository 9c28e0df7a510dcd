"""A big full scan on two cores: part of the walk in a forked child process.

Threads do not help a scan (every system call takes the GIL back: bench/README.md, "Cold scan"),
a second process does. ``Splitter`` is attached to the ``_Walker`` of a full scan (``scan`` does it
when it has no ``reuse`` tree) and is consulted by the walker before it walks a directory:

- Before ``SPLIT_AFTER_NS`` of walking have passed and ``MIN_FILES_SEEN`` files have been walked
  it only notes which directories of the first two levels the walk has entered: a small tree
  never forks, also on a loaded machine.
- Past that, at the next directory of level 1 or 2 it lists the directory whose children are being
  walked (the root first; else the level-1 directory the walk is inside) and picks its
  subdirectories the walk has not entered yet (not ignored). If the walk so far suggests they hold
  at least ``MIN_REMAINING_NS`` of work (time so far / directories entered x directories left),
  it forks a child that walks every other one of them ("the share") with the same walker settings
  and cache records, and sends back, per name of the share, what the serial walk would have built
  for it: entry, subtotal, cache records, problems, subtotals, ignore answers, hashed count
  (msgpack, length-prefixed, over a pipe).
- The parent goes on; a directory of the share it meets is "claimed": it gets a placeholder entry
  and is not walked. When the parent finishes listing the split directory it reads the child's
  answer and puts each claimed name's results where the serial walk would have put them (same
  position in the directory's contents, same records, problems, subtotals, memo, hashed count), so
  the ``ScanResult`` equals a serial scan's. Names of the share the parent never met (gone from
  its listing) are dropped.

Failure rules: if the fork fails, the child dies, exits non-zero, or sends something malformed, or
nothing within its deadline (``CHILD_GRACE_NS`` + 4 x the parent's own time since the fork), the
child is killed and the parent walks the claimed names itself (same result, slower), logging at
debug. The parent always reaps its child by pid (``waitpid``; ``ECHILD``, someone else reaped it,
is accepted), and closes its end of the pipe; ``Splitter.close`` (always called by ``scan``) kills
and reaps a child still running when the walk is left by an exception.

The child: ``gc.disable()`` first (a collection could run finalizers of the parent's objects),
no logging, no imports (everything it needs is imported with this module or warmed before the
fork), only system calls, hashing and encoding; it leaves with ``os._exit`` (0: the answer was
written). Python >= 3.12 warns about ``fork`` in a multi-threaded process (scans run in worker
threads): the warning is suppressed around this one fork, whose child does none of what the
warning is about.
"""

from __future__ import annotations

import errno
import gc
import os
import select
import signal
import struct
import sys
import time
import warnings
from typing import Callable, Optional

import msgspec

from .cache import utf8_encodable
from .model import Entry, Kind
from .settings import TEMPORARY_PREFIX

# Tuning (module settings, measured: bench/README.md "Cold scan on two cores"); tests lower them.
SPLIT_AFTER_NS = 20_000_000  # walking time before a split is considered
MIN_FILES_SEEN = 1_000  # ... and files walked (time alone is inflated on a loaded machine)
MIN_REMAINING_NS = 50_000_000  # estimated work left in the candidate directories to pay a fork
CHILD_GRACE_NS = 5_000_000_000  # the child's deadline: this + 4 x the parent's time since the fork

# Test hooks (never set in production): ``on_fork(pid)`` in the parent after each fork;
# ``in_child(write_fd)`` in the child before it walks (it may write garbage or ``os._exit``).
on_fork: Optional[Callable[[int], None]] = None
in_child: Optional[Callable[[int], None]] = None

_ZERO = (0, 0, 0, 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_HEADER = struct.Struct("<Q")
# The placeholder of a claimed directory (replaced before the directory's entry is built).
_CLAIMED = Entry(Kind.PROBLEMATIC, problem="(walked by the split child)")

# One name of the share: name, entry (None: unusable), subtotal, cache records of the split
# directory for that name, cache records below it, problems, subtotals, ignore answers, hashed.
_Result = tuple[
    str, Entry, tuple[int, int, int, int], dict[str, bytes], dict[str, dict[str, bytes]],
    dict[str, str], dict[str, tuple[int, int, int, int]], Optional[dict[str, bool]], int,
]
_encode = msgspec.msgpack.Encoder().encode
_decoder = msgspec.msgpack.Decoder(list[_Result])

# Children killed but not yet seen exiting (retried at the next split): never a zombie for long.
_unreaped: list[int] = []

_WATCHING, _FORKED, _DONE = 0, 1, 2


class Splitter:
    """The split state of one full scan (see the module docstring); not reusable."""

    def __init__(self, walker, root_fd: int, logger, now: Optional[int] = None):
        self.walker = walker
        self.root_fd = root_fd
        self.log = logger
        self.started_ns = time.monotonic_ns() if now is None else now
        self.split_at = self.started_ns + SPLIT_AFTER_NS
        self.state = _WATCHING
        self.entered_top: set[str] = set()  # level-1 directories entered
        self.current_top: Optional[str] = None
        self.top_entered_ns = 0
        self.entered_below: set[str] = set()  # level-2 directories entered in current_top
        self.level: Optional[str] = None  # path of the split directory once forked
        self.share: dict[str, None] = {}  # names handed to the child
        self.claimed: dict[str, object] = {}  # name -> the parent's lstat of it
        self.pid = 0
        self.read_fd = -1
        self.forked_ns = 0

    # -- the walker's hooks -------------------------------------------------------------------

    def consider(self, dfd: int, st, name: str, path: str) -> Optional[Entry]:
        """Called before the walker walks directory ``path`` (``name`` in the directory open
        as ``dfd``; ``st``: its lstat): the placeholder if the child walks it, else ``None``."""
        state = self.state
        if state == _FORKED:
            if name in self.share and path.rpartition("/")[0] == self.level:
                self.claimed[name] = st
                return _CLAIMED
            return None
        if state != _WATCHING:
            return None
        slash = path.find("/")
        if slash < 0:
            self.current_top = name
            self.top_entered_ns = time.monotonic_ns()
            self.entered_below = set()
            if name in self.entered_top:
                return None  # a name seen twice (non-UTF-8 stand-ins): never split on it
            self.entered_top.add(name)
            depth = 1
        elif path.find("/", slash + 1) < 0 and path[:slash] == self.current_top:
            self.entered_below.add(name)
            depth = 2
        else:
            return None
        now = time.monotonic_ns()
        if now < self.split_at:
            return None
        seen = sum(map(len, self.walker.out.values()))  # files with a cache record so far
        if seen < MIN_FILES_SEEN:
            return None
        elapsed = now - self.started_ns
        # The root first: its unentered subdirectories (the one being entered counts as entered).
        level, level_fd, entered = "", self.root_fd, self.entered_top
        candidates = self._unentered(level_fd, level, entered)
        if not candidates and depth == 2:
            level, level_fd, entered = self.current_top, dfd, self.entered_below
            candidates = self._unentered(level_fd, level, entered)
            elapsed = now - self.top_entered_ns  # this directory's own pace predicts its rest
        if not candidates:
            return None  # nothing to hand over here: ask again at the next directory
        self.state = _DONE  # one decision per scan
        if elapsed * len(candidates) < MIN_REMAINING_NS * len(entered):
            return None
        self._fork(level_fd, level, candidates[::2])
        return None  # the directory being entered is the parent's

    def pending(self, path: str) -> bool:
        """Whether the directory at ``path`` is the split directory (the walker then calls
        ``merge`` when it has gone through its listing)."""
        return self.state == _FORKED and path == self.level

    def merge(self, dfd: int, contents: dict, new_records: dict, old_records: dict, sums: tuple) -> tuple:
        """Complete the split directory: the child's results (or the parent's own walk of the
        claimed names) into ``contents`` / ``new_records`` and the walker's bookkeeping; returns
        the directory's updated ``(dirs, files, links, size)``."""
        walker = self.walker
        path = self.level
        self.state = _DONE
        waited = time.monotonic_ns()
        results = self._collect()
        waited = time.monotonic_ns() - waited
        dirs, files, links, size = sums
        if results is None:
            for name, st in self.claimed.items():
                child = f"{path}/{name}" if path else name
                entry, sub = walker.examine(dfd, st, name, child, old_records, new_records, None)
                contents[name] = entry
                dirs += sub[0]
                files += sub[1]
                links += sub[2]
                size += sub[3]
            self.claimed = {}
            return dirs, files, links, size
        claimed = self.claimed
        out, old, problems, subtotals = walker.out, walker.old, walker.problems, walker.subtotals
        memo = walker.ignorer
        intern = _intern
        for name, entry, sub, level_records, records, its_problems, its_subtotals, seen, hashed in results:
            if name not in claimed:
                continue
            contents[name] = entry
            dirs += sub[0]
            files += sub[1]
            links += sub[2]
            size += sub[3]
            for record_name, record in level_records.items():
                new_records[intern(record_name)] = record
            for directory, its_records in records.items():
                previous = old.get(directory)
                # The same records as the cache held: keep its dict (as the serial walk does).
                out[directory] = previous if previous is not None and previous == its_records else its_records
            problems.update(its_problems)
            subtotals.update(its_subtotals)
            if seen:
                memo.seen.update(seen)
            walker.hashed += hashed
        self.log.debug("scan split: merged the child's share", level=path, share=len(self.share),
                       claimed=len(claimed), forked_after_ms=round((self.forked_ns - self.started_ns) / 1e6, 1),
                       waited_ms=round(waited / 1e6, 1))
        self.claimed = {}
        return dirs, files, links, size

    def close(self) -> None:
        """Kill and reap a child still running (the walk was left by an exception)."""
        if self.pid:
            _kill(self.pid)
            self.pid = 0
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1
        self.state = _DONE

    # -- parent side --------------------------------------------------------------------------

    def _unentered(self, level_fd: int, level: str, entered: set) -> list[str]:
        """Subdirectories of the directory open as ``level_fd`` (listed again, through a new
        descriptor: never the walker's own listing) that the walk has not entered, in listing
        order; ignored ones and names the walker skips are left out."""
        names = []
        try:
            fd = os.open(".", _DIR_FLAGS, dir_fd=level_fd)
        except OSError:
            return names
        ignorer = self.walker.ignorer
        ignorer = getattr(ignorer, "ignorer", ignorer)  # the bare ignorer: the memo is the walk's
        try:
            with os.scandir(fd) as listing:
                for item in listing:
                    name = item.name
                    if name in entered or name.startswith(TEMPORARY_PREFIX) or not name.isascii() and not utf8_encodable(name):
                        continue
                    if not item.is_dir(follow_symlinks=False):
                        continue
                    if ignorer is not None:
                        child = f"{level}/{name}" if level else name
                        if ignorer.ignored(child, True) and not ignorer.may_reinclude_below(child):
                            continue
                    names.append(name)
        except OSError:
            return []
        finally:
            os.close(fd)
        return names

    def _fork(self, level_fd: int, level: str, share: list[str]) -> None:
        _reap_stragglers()
        self.walker.one_shot(b"")  # the hash's module is imported (hashlib is imported lazily)
        try:
            read_fd, write_fd = os.pipe()
        except OSError as error:
            self.log.debug("scan split: no pipe, walking serially", error=str(error))
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError as error:
            os.close(read_fd)
            os.close(write_fd)
            self.log.debug("scan split: fork failed, walking serially", error=str(error))
            return
        if pid == 0:
            _child(self.walker, read_fd, write_fd, level_fd, level, share)  # never returns
        os.close(write_fd)
        self.pid, self.read_fd = pid, read_fd
        self.forked_ns = time.monotonic_ns()
        self.level = level
        self.share = dict.fromkeys(share)
        self.state = _FORKED
        if on_fork is not None:
            on_fork(pid)

    def _collect(self) -> Optional[list]:
        """The child's decoded answer, or ``None`` (the parent walks the claimed names). The
        child is reaped and the pipe closed either way."""
        pid, fd = self.pid, self.read_fd
        self.pid, self.read_fd = 0, -1
        now = time.monotonic_ns()
        deadline = now + CHILD_GRACE_NS + 4 * (now - self.forked_ns)
        why = None
        body = None
        try:
            header = _read_exactly(fd, _HEADER.size, deadline)
            if header is None:
                why = "no answer"
            else:
                body = _read_exactly(fd, _HEADER.unpack(header)[0], deadline)
                if body is None:
                    why = "short answer"
        except OSError as error:
            why = f"unable to read the answer: {error.strerror}"
        finally:
            os.close(fd)
        # An answer cut short (end of file) leaves the child a moment to finish exiting; past the
        # deadline it is killed at once.
        status = _reap(pid, deadline if why is None else min(deadline, time.monotonic_ns() + 1_000_000_000))
        if status is not None and status != 0:
            why = f"{why or 'answer'}, child exit status {status}"
        results = None
        if why is None:
            try:
                results = _decoder.decode(body)
            except (msgspec.DecodeError, msgspec.ValidationError) as error:
                why = f"malformed answer: {error}"
        del body
        if why is not None:
            self.log.debug("scan split: walking the child's share here", reason=why, level=self.level,
                           claimed=len(self.claimed))
            return None
        return results


_intern = sys.intern


def _read_exactly(fd: int, size: int, deadline: int) -> Optional[bytes]:
    """``size`` bytes from ``fd``, or ``None`` on end of file or past ``deadline``."""
    if size == 0:
        return b""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    try:
        while got < size:
            left_ms = (deadline - time.monotonic_ns()) // 1_000_000
            if left_ms <= 0 or not poller.poll(left_ms):
                return None
            count = os.readv(fd, [view[got:]])
            if count == 0:
                return None
            got += count
    finally:
        view.release()
    return bytes(buffer) if size < 4096 else buffer


_RUNNING = object()


def _exit_status(pid: int, deadline: int):
    """Poll ``pid`` (``waitpid`` without blocking, every millisecond) until it has exited or
    ``deadline`` (monotonic ns) has passed: its wait status once reaped, None if someone else
    reaped it, ``_RUNNING`` if it still runs at the deadline (one look when already past)."""
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        if time.monotonic_ns() >= deadline:
            return _RUNNING
        select.select([], [], [], 0.001)


def _reap(pid: int, deadline: int) -> Optional[int]:
    """Wait for ``pid`` until ``deadline`` (monotonic ns; 0: kill it now), then kill it:
    its exit status (a negative signal number if killed), ``None`` if someone else reaped it."""
    status = _exit_status(pid, deadline)
    if status is _RUNNING:
        _kill(pid)
        return -signal.SIGKILL
    if status is None:
        return None
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status


def _kill(pid: int) -> None:
    """SIGKILL ``pid`` and reap it (within 2 s; else it is retried at the next split)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if _exit_status(pid, time.monotonic_ns() + 2_000_000_000) is _RUNNING:
        _unreaped.append(pid)


def _reap_stragglers() -> None:
    for pid in list(_unreaped):
        if _exit_status(pid, 0) is not _RUNNING:
            _unreaped.remove(pid)


# -- child side ---------------------------------------------------------------------------------

def _child(walker, read_fd: int, write_fd: int, level_fd: int, level: str, share: list[str]) -> None:
    """The forked child: walk ``share`` (names in the directory open as ``level_fd``, at
    ``level``), write the answer, ``os._exit`` (0 only when the answer was written)."""
    gc.disable()
    code = 70
    try:
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)  # a signal here must not wake the parent's event loop
    except (ValueError, OSError):
        pass
    try:
        os.close(read_fd)
        if in_child is not None:
            in_child(write_fd)
        body = _encode(_walk_share(walker, level_fd, level, share))
        _write_all(write_fd, _HEADER.pack(len(body)))
        _write_all(write_fd, body)
        code = 0
    except BaseException:  # noqa: BLE001 - the exit code says it; nothing may escape the child
        code = 71
    finally:
        os._exit(code)


def _walk_share(walker, level_fd: int, level: str, share: list[str]) -> list:
    walker.split = None
    memo = walker.ignorer
    if memo is not None and not hasattr(memo, "seen"):
        memo = None
    old_records = walker.old.get(level) or {}
    results = []
    for name in share:
        path = f"{level}/{name}" if level else name
        walker.out, walker.problems, walker.subtotals, walker.hashed = {}, {}, {}, 0
        if memo is not None:
            memo.seen = {}
        level_records: dict = {}
        try:
            st = os.stat(name, dir_fd=level_fd, follow_symlinks=False)
        except OSError as error:
            # Gone since the parent listed it: what the walk says of a directory it cannot open.
            entry, sub = walker.problem(path, f"unable to open directory: {error.strerror}"), _ZERO
        else:
            entry, sub = walker.examine(level_fd, st, name, path, old_records, level_records, None)
        results.append((
            name, entry, sub, level_records, walker.out, walker.problems, walker.subtotals,
            memo.seen if memo is not None else None, walker.hashed,
        ))
    return results


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
