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
that part). ``THRESHOLDS_FIXED`` says whether glibc took them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

from mutagen_actors.agent.memory import keep_trimmable

QUIET_SECONDS = 1.0
THRESHOLDS_FIXED = keep_trimmable()

try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


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
