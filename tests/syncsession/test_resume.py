"""Crash mid-file, resume mid-file: kill -9 the stager of a real session while a big file is
half-way across (the transfer rate is capped by the test-only variable so 'half-way' lasts long
enough to hit); the restarted stager sends only the part the receiver had not staged yet (its
``staging done`` log line), and the file arrives exact."""

from __future__ import annotations

import json
import os
import signal

import pytest

from mutagen_actors.actors.syncsession.stager import TEST_RATE_VARIABLE

from .conftest import Sync, leftovers, wait_until, write

MIB = 1 << 20
SIZE = 96 * MIB
RATE = 24 * MIB  # bytes per second: the whole file takes 4 s
KILL_AFTER = 16 * MIB


@pytest.fixture
def throttled(daemon, monkeypatch):  # noqa: F811 - the foundation fixture
    monkeypatch.setenv(TEST_RATE_VARIABLE, str(RATE))
    daemon.start()
    return Sync(daemon)


def staging_done(log_path: str) -> list:
    events = []
    with open(log_path, encoding="utf-8") as stream:
        for line in stream:
            if '"staging done"' in line:
                events.append(json.loads(line))
    return events


def same_content(path: str, content: bytes) -> bool:
    try:
        if os.path.getsize(path) != len(content):
            return False
        with open(path, "rb") as stream:
            return stream.read() == content
    except FileNotFoundError:
        return False


def test_kill_9_of_the_stager_mid_file_resumes_from_what_was_staged(throttled: Sync, roots):
    sync = throttled
    alpha, beta = roots
    content = os.urandom(SIZE)
    write(alpha, "big.bin", content)
    identifier = sync.create(alpha, beta)

    def mid_file():
        progress = sync.state(identifier).beta.staging_progress
        return progress if progress is not None and progress.received_size >= KILL_AFTER else None

    seen = wait_until(mid_file, 60, interval=0.02, what="the big file half-way staged")
    assert seen.received_size < SIZE
    os.kill(sync.actor_pid(identifier, "stager"), signal.SIGKILL)

    wait_until(lambda: same_content(os.path.join(beta, "big.bin"), content), 90,
               interval=0.1, what="the big file to arrive exact")
    done = staging_done(sync.daemon.log_path)
    assert len(done) == 1, done  # the killed pass never finished
    resumed = done[0]["resumed_bytes"]
    assert resumed >= seen.received_size  # at least what was acknowledged before the kill
    assert done[0]["content_bytes"] == SIZE - resumed  # only the missing part travelled
    assert not leftovers(alpha, beta)
