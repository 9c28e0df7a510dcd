"""A transition run in a child process and killed with SIGKILL part-way (the crash tests of
``transition``): the child scans ``root``, builds its ``changes`` from a listing of
``path digest`` lines (``CHANGES``: Python run with ``snapshot`` and ``listing`` defined),
prints "applying" and applies them from the staging store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Callable

_CHILD = """
import sys
from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.model import Change, Entry
from mutagen_actors.actors.sync.scan import scan
from mutagen_actors.actors.sync.settings import HashAlgorithm
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.sync.transition import transition

root, store, digests, algorithm = sys.argv[1], sys.argv[2], sys.argv[3], HashAlgorithm(sys.argv[4])
cache = DigestCache(algorithm)
snapshot = scan(root, hash=algorithm, cache=cache).root
listing = [line.split() for line in open(digests)]
{changes}
print("applying", flush=True)
transition(root, changes, cache=cache, staging=Staging(store, algorithm), hash=algorithm)
print("done", flush=True)
"""


def kill_mid_transition(changes: str, root, store: str, digests, algorithm,
                        started: Callable[[], bool], what: str) -> None:
    """Run the child (``changes``: the code that sets ``changes``), wait (60 s at most) until
    ``started()`` holds, then kill -9 it; ``AssertionError`` naming ``what`` if it never does,
    or if the child did not die of the kill."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(changes=changes), str(root), store, str(digests),
         algorithm.value],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"applying\n", child.stderr.read().decode()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if started():
                break
        else:
            raise AssertionError(f"the transition never {what}")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
