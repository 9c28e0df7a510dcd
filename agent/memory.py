"""Give freed heap memory back to the system after a big job (glibc only; a no-op elsewhere).

Shared by the agent and the daemon's session actors (it lives here because the agent imports no
session code).

glibc raises its mmap threshold after large buffers are freed, so the next ones come from the
heap and stay there; an actor that once staged 4 MiB batches would keep that memory for good.
``trim()`` calls ``malloc_trim(0)``; cheap (well under a millisecond on a small heap).

``limit_arenas(count)``: at most ``count`` glibc malloc arenas in this process (the remote agent
calls it at start; the daemon's actors get the same from the fork server's set-up). Every
thread that allocates (asyncio worker threads: scans, transitions, staging) would otherwise get
an arena of its own, and memory freed in one is never reused by another. Returns whether it
took effect; never raises.

``keep_trimmable(threshold)``: fixed glibc thresholds (``M_MMAP_THRESHOLD`` and
``M_TRIM_THRESHOLD``, both ``threshold``, 1 MiB by default) instead of glibc's sliding ones.
``malloc_trim`` never shrinks the top of a thread's arena (only the main heap's); that top is
given back only by a ``free`` once it exceeds the trim threshold, and glibc raises that
threshold to twice the largest buffer freed so far (up to 64 MiB). So after one 8 MiB read in a
worker thread (scans, transitions, staging run there), up to 16 MiB freed at the top of that
thread's arena stayed resident for good (measured: +1.9 MB in the agent after a 100 MiB delta
rebuild and its transition, not released by ``trim``). With fixed thresholds, buffers of
``threshold`` bytes or more are mapped and unmapped on their own and the arena tops are given
back beyond ``threshold``. Cost: a big buffer is faulted in again each time (~0.1 ms per MiB).
Returns whether glibc took both; never raises. Set once per process: the fork server (through
``actors.runtime.heap``), the remote agent (``LocalEndpoint.start``).

``tidy_when_quiet()``: a task for a process without the actor runtime's tidy (the daemon): every
``tick`` seconds, once the process has used ``after_cpu`` seconds of CPU since the last tidy and
the last tick was quiet (under ``quiet_cpu``), a full collection then ``trim()``. Idle, a tick
costs one clock read. ``trim_due`` is its decision (pure).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import time

_M_ARENA_MAX = -8  # glibc malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 4 << 20

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim = _libc.malloc_trim
    _mallopt = _libc.mallopt
except (OSError, AttributeError):  # not glibc
    _malloc_trim = _mallopt = None


def trim() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)


def limit_arenas(count: int = 2) -> bool:
    if _mallopt is None:
        return False
    try:
        return bool(_mallopt(_M_ARENA_MAX, count))
    except (OSError, ValueError):
        return False


def keep_trimmable(threshold: int = TRIM_THRESHOLD) -> bool:
    if _mallopt is None:
        return False
    try:
        return bool(_mallopt(_M_MMAP_THRESHOLD, threshold)) & bool(
            _mallopt(_M_TRIM_THRESHOLD, threshold))
    except (OSError, ValueError):
        return False


def trim_due(cpu: float, cpu_at_trim: float, cpu_at_tick: float, *, after_cpu: float,
             quiet_cpu: float) -> bool:
    """Whether to tidy now: the process worked since the last tidy (more than ``after_cpu``
    seconds of CPU) and the last tick was quiet (less than ``quiet_cpu``)."""
    return cpu - cpu_at_trim > after_cpu and cpu - cpu_at_tick < quiet_cpu


async def tidy_when_quiet(*, tick: float = 1.0, after_cpu: float = 0.2,
                          quiet_cpu: float = 0.05) -> None:
    """Runs until cancelled (see the module docstring)."""
    cpu_at_trim = cpu_at_tick = time.process_time()
    while True:
        await asyncio.sleep(tick)
        cpu = time.process_time()
        if trim_due(cpu, cpu_at_trim, cpu_at_tick, after_cpu=after_cpu, quiet_cpu=quiet_cpu):
            gc.collect()
            trim()
            cpu = cpu_at_trim = time.process_time()
        cpu_at_tick = cpu
