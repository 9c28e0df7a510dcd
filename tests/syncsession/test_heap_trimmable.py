"""``agent.memory.keep_trimmable``: memory a worker thread freed at the top of its glibc arena is
given back to the system (``malloc_trim`` alone never shrinks a thread arena's top, and glibc's
sliding trim threshold kept up to twice the largest buffer freed so far). Each case runs in a
fresh interpreter (the thresholds are per process); the observable is the process's RSS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")

PROGRAM = r"""
import json, sys, threading
from mutagen_actors.agent.memory import keep_trimmable, limit_arenas, trim
limit_arenas()
fixed = keep_trimmable() if sys.argv[1] == "fixed" else None
def rss():
    with open("/proc/self/status") as handle:
        return next(int(l.split()[1]) for l in handle if l.startswith("VmRSS:")) * 1024
big = bytearray(8 << 20)  # one big buffer freed: glibc would raise its thresholds to 16 MiB
del big
def work():
    pieces = [bytes(3000) for _ in range(4000)]  # 12 MB from this thread's arena
    del pieces
before = rss()
thread = threading.Thread(target=work)
thread.start()
thread.join(30)
trim()
print(json.dumps({"fixed": fixed, "kept": rss() - before}))
"""


def run(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True,
                          timeout=60, check=True)
    return json.loads(done.stdout)


def test_a_worker_threads_freed_memory_is_given_back():
    fixed = run("fixed")
    if not fixed["fixed"]:
        pytest.skip("not glibc")
    assert fixed["kept"] < 4 << 20
    assert run("sliding")["kept"] > 8 << 20  # what the fix is for (glibc's default)
