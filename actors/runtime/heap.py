"""Hand an actor's freed memory back after a burst of work (the runtime calls ``tidy`` once an
actor has been quiet for ``QUIET_SECONDS`` after handling requests).

``tidy()``: a full garbage collection, which also empties CPython's free lists (thousands of
freed tuples, lists and dicts kept for reuse, scattered over the small-object arenas: each one
keeps a whole 1 MiB arena resident), then glibc's ``malloc_trim(0)`` (gives free heap pages back;
a no-op without glibc). Cheap in an actor: the fork server froze the preloaded objects, so the
collection walks only the actor's own (snapshot entries are not tracked at all). Never raises.

Importing this module fixes glibc's mmap and trim thresholds for the process
(``agent.memory.keep_trimmable``): the fork server imports it, so every actor inherits them and
the top of its worker threads' arena is given back after a big job (``malloc_trim`` does not do
that part): above 4 MiB by ``free`` itself, below it by ``tidy`` (``_shrink_worker_arena``). ``THRESHOLDS_FIXED`` says whether glibc took them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

from mutagen_actors.agent.memory import TRIM_THRESHOLD, keep_trimmable

QUIET_SECONDS = 1.0
THRESHOLDS_FIXED = keep_trimmable()

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim, _mallopt = _libc.malloc_trim, _libc.mallopt
except (OSError, AttributeError):  # not glibc
    _malloc_trim = _mallopt = None
_M_TRIM_THRESHOLD = -1  # glibc malloc.h
_SHRINK_THRESHOLD = 128 << 10  # glibc's default trim threshold


def resident() -> int:
    """This process's resident set size in bytes (``/proc/self/statm``; 0 where unreadable)."""
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tidy() -> None:
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
        _shrink_worker_arena()


def _shrink_worker_arena() -> None:
    """Give back the free top of the worker threads' glibc arena (``malloc_trim`` never does:
    it shrinks only the main heap's top, and a thread arena's top is shrunk only by a ``free``
    in that arena once the top is above the trim threshold, fixed at 4 MiB here). Up to 4 MiB
    stayed resident per actor after a big job in a worker thread (the reconciler's archive
    save encodes the whole ancestor there: 3.4 MB). So: in a worker of the running loop's
    default executor (where ``asyncio.to_thread`` work runs, hence its arena), lower the
    threshold, free a 256 KiB block (a free of 64 KiB or more makes glibc check that arena's
    top) and set the threshold back. Fire and forget; nothing when no worker ever ran."""
    import asyncio

    if not THRESHOLDS_FIXED:
        return
    try:
        executor = getattr(asyncio.get_running_loop(), "_default_executor", None)
    except RuntimeError:  # no loop in this thread
        return
    if executor is not None:
        try:
            executor.submit(_release_arena_top)
        except RuntimeError:  # shut down
            pass


def _release_arena_top() -> None:
    _mallopt(_M_TRIM_THRESHOLD, _SHRINK_THRESHOLD)
    try:
        block = bytearray(256 << 10)
        del block
    finally:
        _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
