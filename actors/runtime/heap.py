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
import threading

from mutagen_actors.agent.memory import TRIM_THRESHOLD, keep_trimmable

QUIET_SECONDS = 1.0
THRESHOLDS_FIXED = keep_trimmable()

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim, _mallopt = _libc.malloc_trim, _libc.mallopt
    _malloc, _free = _libc.malloc, _libc.free
    _malloc.restype, _malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    _free.restype, _free.argtypes = None, [ctypes.c_void_p]
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
    """Give back the free top of the other glibc arena (the fork server allows two): threads
    allocate there (ZeroMQ's I/O thread receiving multi-MB messages, ``asyncio.to_thread``
    work such as the reconciler's archive save), and ``malloc_trim`` never shrinks it: it
    shrinks only the main heap's top, while a thread arena's top is shrunk only by a ``free``
    of 64 KiB or more in that arena once the top is above the trim threshold (fixed at 4 MiB
    here). 3.4 MB stayed resident in beta and in the reconciler. So: a short-lived thread
    (new threads take the arenas in turn; up to 3 tries to land in a thread arena) lowers the
    threshold, allocates and frees a 256 KiB block there and sets the threshold back."""
    if not THRESHOLDS_FIXED:
        return
    for _ in range(3):
        landed: list = []
        thread = threading.Thread(target=_release_arena_top, args=(landed,), daemon=True)
        thread.start()
        thread.join(5)
        if not landed or landed[0]:
            return


def _release_arena_top(landed: list) -> None:
    """In this thread's arena; appends whether that was a thread arena (not the main heap)."""
    _mallopt(_M_TRIM_THRESHOLD, _SHRINK_THRESHOLD)
    try:
        block = _malloc(256 << 10)
        if block:
            landed.append(not _in_main_heap(block))
            _free(block)
    finally:
        _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def _in_main_heap(address: int) -> bool:
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                if line.rstrip().endswith("[heap]"):
                    low, high = (int(part, 16) for part in line.split()[0].split("-"))
                    if low <= address < high:
                        return True
    except OSError:
        return True  # unknown: do not try again
    return False
