"""``actors.runtime.heap.tidy`` gives back the free top of the threads' glibc arena, which
``malloc_trim`` leaves resident (it shrinks only the main heap's top): after a job in a thread
that used a few MB below the fixed 4 MiB thresholds (the reconciler's archive save; ZeroMQ's
I/O thread receiving big messages: 3.4 MB in beta and the reconciler), RSS falls once ``tidy``
has run. A real process, RSS from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mutagen_actors.actors.runtime import heap

SCRIPT = textwrap.dedent("""
    import asyncio, gc, os
    from mutagen_actors.actors.runtime import heap
    from mutagen_actors.agent import memory

    memory.limit_arenas(2)  # as the fork server does for every actor

    def rss():
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def job():  # a few MB of blocks below the mmap threshold, freed at the end
        blocks = [b"x" * 200_000 for _ in range(15)]  # written, so resident
        del blocks

    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(job)
        gc.collect()
        memory.trim()                              # what tidy did before: malloc_trim(0)
        before = rss()
        heap.tidy()
        print(round(before, 2), round(rss(), 2))

    asyncio.run(main())
""")


@pytest.mark.skipif(not heap.THRESHOLDS_FIXED, reason="glibc only")
def test_tidy_gives_back_the_worker_arena_top():
    output = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "PYTHONWARNINGS": "error"})
    assert output.returncode == 0, output.stderr
    before, after = map(float, output.stdout.split())
    assert after <= before - 2.0, (before, after)  # MiB: ~3 MiB of the job's top given back
