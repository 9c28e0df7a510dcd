"""Give freed heap memory back to the system after a big job (glibc only; a no-op elsewhere).

Shared by the agent and the daemon's session actors (it lives here because the agent imports no
session code).

glibc raises its mmap threshold after large buffers are freed, so the next ones come from the
heap and stay there; an actor that once staged 4 MiB batches would keep that memory for good.
``trim()`` calls ``malloc_trim(0)``; cheap (well under a millisecond on a small heap).
"""

from __future__ import annotations

import ctypes
import ctypes.util

try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def trim() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)
