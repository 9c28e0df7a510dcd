"""agent.memory: arena limit and trim work on this (glibc) machine and never raise."""

import threading

import pytest

from mutagen_actors.agent import memory


@pytest.mark.parametrize("count", [2, 2, 8])  # idempotent; any positive count is accepted
def test_limit_arenas_takes_effect(count):
    assert memory.limit_arenas(count) is True


def test_trim_after_big_buffers_in_threads():
    def churn():
        buffers = [bytearray(4 << 20) for _ in range(4)]
        del buffers

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert memory.trim() is None
