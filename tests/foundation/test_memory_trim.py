"""When a process without the actor runtime (the daemon, the remote agent) gives freed memory
back: after work, once a tick was quiet; never while busy, never when idle all along."""

import asyncio

import pytest

from mutagen_actors.agent.memory import tidy_when_quiet, trim_due


@pytest.mark.parametrize("cpu,at_trim,at_tick,due", [
    (1.00, 0.00, 0.99, True),    # worked 1 s since the last tidy, quiet tick: tidy
    (1.00, 0.00, 0.50, False),   # still busy (0.5 s in the last tick)
    (0.10, 0.00, 0.10, False),   # idle, but not enough work since the last tidy
    (0.30, 0.00, 0.28, True),    # just past the work threshold, quiet
    (5.00, 4.90, 5.00, False),   # tidied recently
], ids=["worked-then-quiet", "busy", "little-work", "threshold", "recent"])
def test_trim_due(cpu, at_trim, at_tick, due):
    assert trim_due(cpu, at_trim, at_tick, after_cpu=0.2, quiet_cpu=0.05) is due


def test_tidy_task_runs_and_stops_when_cancelled():
    async def main():
        task = asyncio.get_running_loop().create_task(tidy_when_quiet(tick=0.01, after_cpu=0.0))
        sum(range(200_000))  # some CPU, then quiet ticks: at least one tidy runs
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()

    asyncio.run(main())
