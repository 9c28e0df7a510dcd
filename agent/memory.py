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
