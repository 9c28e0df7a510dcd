"""Imported last by the daemon's fork server, after every preloaded module: prepares the heap
that all actors then share copy-on-write.

- ``gc.freeze()`` (after a full collection) moves every object the preloads created into the
  permanent generation: a collection in an actor never walks them, so it never writes to their
  GC headers and never un-shares the pages they sit on. Objects an actor creates itself are
  collected as usual.
- glibc malloc (when present): at most ``ARENA_MAX`` arenas. Each thread that allocates
  (asyncio worker threads, the ZeroMQ I/O thread) would otherwise get its own 64 MiB arena, and
  memory freed in one arena is never reused by another thread: with many small actor processes
  this idle fragmentation is a large part of their resident memory. Set here with ``mallopt``
  (inherited by every fork) rather than ``MALLOC_ARENA_MAX`` in the environment, so the daemon's
  other children (ssh, docker, agents) are left alone.
- ``malloc_trim(0)`` last: the imports freed ~1.4 MB of C heap (file buffers, compiler
  temporaries) that would otherwise stay resident in the fork server and, inherited, in the RSS
  of every actor it forks.

Importing it anywhere else is harmless: both calls are idempotent. Failures (not glibc) are
silently skipped: they cost memory, never correctness.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

ARENA_MAX = 2
_M_ARENA_MAX = -8  # glibc malloc.h


def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _limit_arenas() -> bool:
    try:
        return bool(_libc().mallopt(_M_ARENA_MAX, ARENA_MAX))
    except AttributeError:  # not glibc
        return False


def _trim() -> None:
    try:
        _libc().malloc_trim(0)
    except AttributeError:  # not glibc
        pass


ARENAS_LIMITED = _limit_arenas()
gc.collect()
gc.freeze()
_trim()
