"""What the in-process bench scripts share: a log that drops everything (the actors and
suppliers they drive want one) and one run profiled with cProfile when asked."""

from __future__ import annotations

import cProfile
from typing import Callable, Optional, TypeVar

T = TypeVar("T")


class QuietLog:
    """A structlog-shaped logger that writes nothing: every level is a no-op, ``bind`` returns
    the same logger."""

    def info(self, *args, **kwargs) -> None:
        pass

    debug = warning = error = exception = info

    def bind(self, **_fields) -> "QuietLog":
        return self


def run_profiled(work: Callable[[], T], profile_path: Optional[str]) -> T:
    """``work()``'s result; with ``profile_path`` the call runs under cProfile and the profile is
    written there (nothing is written if ``work`` raises)."""
    if not profile_path:
        return work()
    profile = cProfile.Profile()
    profile.enable()
    result = work()
    profile.disable()
    profile.dump_stats(profile_path)
    return result
