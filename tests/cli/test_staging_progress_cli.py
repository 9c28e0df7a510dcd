"""Issue 6, "Progress": staging progress users can trust, through the real CLI and a real daemon.

While a transfer of many small files plus a few big ones runs (slowed by the stager's test-only
rate cap, ``MUTAGEN_ACTORS_TEST_STAGING_RATE``, so staging is seen mid-flight without sleeps or
huge trees), ``sync list --json``, ``sync list --long`` and ``sync monitor`` (non-tty output) are
sampled, and at every sample: received files <= expected files, received bytes <= expected
bytes, the current file's received <= its size, nothing received goes backwards within the pass,
the estimate is absent or >= 0. At the end, ``lastStagingProgress`` says received == expected,
and expected is exactly the distinct contents that travelled: files the receiver reused (a copy
of a file it already had) and duplicates of content already sent are in no count.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from cli.conftest import SyncDaemon
from foundation.conftest import processes_of, wait_until
from remote.conftest import sshd  # noqa: F401 - fixture

from mutagen_actors.actors.syncsession.stager import TEST_RATE_VARIABLE

RATE = 6 * 1024 * 1024  # bytes per second: a ~20 MiB transfer takes ~3 s
TIMEOUT = 90.0
LIST_LINE = re.compile(r"^Staging progress: (\d+)/(\d+) - ([^-]+?) - (\d+)%( - ETA \S+)?$")
CURRENT_LINE = re.compile(r"^Current file: (.+) \((.+)/(.+)\)$")
MONITOR_PROGRESS = re.compile(r"Staging files on (alpha|beta) \[[←→]\] "
                              r"\[(\d+)/(\d+) - [^\]]+ - (\d+)%\]")


class ThrottledDaemon(SyncDaemon):
    rate: int = RATE

    @property
    def env(self) -> dict:
        return {**super().env, TEST_RATE_VARIABLE: str(self.rate)}


def start_daemon(ssh_directory: str | None = None, rate: int = RATE):
    root = tempfile.mkdtemp(prefix="mp-", dir="/tmp")  # short: unix socket paths
    handle = ThrottledDaemon(os.path.join(root, "data"))
    handle.rate = rate
    handle.home = os.path.join(root, "home")
    os.mkdir(handle.home)
    if ssh_directory:
        os.symlink(ssh_directory, os.path.join(handle.home, ".ssh"))
    return handle, root


def stop_daemon(handle, root: str) -> None:
    for pid in processes_of(handle.data_dir):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    wait_until(lambda: not processes_of(handle.data_dir), 10, what="test processes to die")
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def throttled():
    handle, root = start_daemon()
    yield handle
    stop_daemon(handle, root)


def put(root: str, relative: str, content: bytes) -> None:
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(content)


def make_tree(root: str, small: int, big: int, big_size: int) -> dict[str, bytes]:
    """Many small files, a few big ones, and five copies of one content; returns path -> content."""
    files = {f"d{i % 10}/f{i}.bin": os.urandom(4096) for i in range(small)}
    files.update({f"big/b{i}.bin": os.urandom(big_size) for i in range(big)})
    same = os.urandom(3000)
    files.update({f"dup/c{i}.txt": same for i in range(5)})
    for relative, content in files.items():
        put(root, relative, content)
    return files


def travelling(files: dict[str, bytes], receiver_has: set[bytes]) -> tuple[int, int]:
    """(files, bytes) that must travel: one per distinct content the receiver lacks."""
    distinct = {hashlib.sha256(c).digest(): c for c in files.values()
                if hashlib.sha256(c).digest() not in receiver_has}
    return len(distinct), sum(len(c) for c in distinct.values())


def check_json_sample(session: dict, previous: dict) -> None:
    """The invariants of one ``list --json`` sample; ``previous`` holds the last progress seen
    per pass. A successful cycle stages at most once per side; a failed cycle runs again after
    a second without progress and with ``lastError`` set: so a pass is a side, a cycle number
    and the last error, and a sample without progress ends the pass seen before it."""
    for side in ("alpha", "beta"):
        progress = session[side]["stagingProgress"]
        if progress is None:
            for key in [key for key in previous if key[0] == side]:
                del previous[key]
            continue
        assert session["status"] == f"staging-{side}", session["status"]
        assert set(progress) >= {"path", "receivedSize", "expectedSize", "receivedFiles",
                                 "expectedFiles", "totalReceivedSize", "totalExpectedSize"}
        assert 0 <= progress["receivedFiles"] <= progress["expectedFiles"], progress
        assert 0 <= progress["totalReceivedSize"] <= progress["totalExpectedSize"], progress
        assert 0 <= progress["receivedSize"] <= progress["expectedSize"], progress
        assert progress.get("secondsRemaining", 0) >= 0, progress
        staging_pass = (side, session["successfulCycles"], session["lastError"])
        before = previous.get(staging_pass)
        if before is not None:
            assert progress["receivedFiles"] >= before["receivedFiles"], (before, progress)
            assert progress["totalReceivedSize"] >= before["totalReceivedSize"], (before, progress)
        previous[staging_pass] = progress


def check_long_sample(text: str) -> bool:
    """Invariants of the staging lines of ``list --long``; True if it showed them."""
    lines = text.splitlines()
    shown = [LIST_LINE.match(line) for line in lines if line.startswith("Staging progress:")]
    for match in shown:
        assert match, lines
        received, expected, percent = int(match[1]), int(match[2]), int(match[4])
        assert received <= expected and 0 <= percent <= 100, match[0]
    for line in lines:
        if line.startswith("Current file:"):
            assert CURRENT_LINE.match(line), line
    return bool(shown)


def check_monitor_lines(lines: list[str], side: str) -> int:
    """Monitor's status lines of staging on ``side``: files within bounds, percent never falls."""
    percents = []
    for line in lines:
        match = MONITOR_PROGRESS.search(line)
        if match and match[1] == side:
            received, expected, percent = int(match[2]), int(match[3]), int(match[4])
            assert received <= expected and 0 <= percent <= 100, line
            percents.append(percent)
    assert percents == sorted(percents), percents
    return len(percents)


def watch_staging(daemon: SyncDaemon, name: str, side: str) -> tuple[dict, dict]:
    """Sample ``list --json`` (and now and then ``list --long``) until the session completed a
    cycle; check every sample; return the final JSON session and the first progress of
    ``side`` that knew its sizes."""
    previous: dict = {}
    mid_flight = estimates = long_shown = 0
    deadline = time.monotonic() + TIMEOUT
    samples = 0
    session: dict = {}
    first = None
    while True:
        assert time.monotonic() < deadline, (
            f"no completed cycle within {TIMEOUT} s: {session.get('status')!r}, "
            f"{session.get('lastError')!r}, {session.get(side, {}).get('stagingProgress')}")
        session = json.loads(daemon.sync("list", "--json", name).stdout)[0]
        samples += 1
        check_json_sample(session, previous)
        progress = session[side]["stagingProgress"]
        if first is None and progress is not None and progress["totalExpectedSize"]:
            first = progress
        if progress is not None:
            if 0 < progress["totalReceivedSize"] < progress["totalExpectedSize"]:
                mid_flight += 1
            estimates += "secondsRemaining" in progress
            if not long_shown or samples % 3 == 0:
                long_shown += check_long_sample(daemon.sync("list", "--long", name).stdout)
        if session["successfulCycles"] >= 1 and session["status"] == "watching":
            break
    assert mid_flight >= 2, f"staging seen mid-flight in only {mid_flight} of {samples} samples"
    assert estimates >= 1, "no time estimate was ever shown"
    assert long_shown >= 1, "list --long never showed the staging lines"
    assert session["lastError"] == "", session["lastError"]
    return session, first


def start_monitor(daemon: SyncDaemon, name: str, output):
    return subprocess.Popen([sys.executable, "-m", "mutagen_actors.cli", "sync", "monitor", name],
                            env=daemon.env, stdout=output, stderr=subprocess.STDOUT)


def stop_monitor(process, output) -> list[str]:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    output.seek(0)
    return output.read().decode().splitlines()


def staging_log(daemon) -> list[str]:
    """The daemon log's staging lines (what a failed assertion shows)."""
    try:
        with open(daemon.log_path) as stream:
            return [line.strip() for line in stream
                    if any(word in line for word in ("staging", "failed", "refetch"))]
    except OSError as error:
        return [str(error)]


def assert_final(progress: dict, files: int, size: int, daemon=None) -> None:
    where = (progress, "\n".join(staging_log(daemon)[-10:]) if daemon else "")
    assert progress["receivedFiles"] == progress["expectedFiles"] == files, where
    assert progress["totalReceivedSize"] == progress["totalExpectedSize"] == size, where
    assert progress["receivedSize"] == progress["expectedSize"], where


def test_local_progress_adds_up_in_json_long_and_monitor(throttled, tmp_path):
    alpha, beta = str(tmp_path / "alpha"), str(tmp_path / "beta")
    files = make_tree(alpha, small=300, big=3, big_size=6 * 1024 * 1024)
    # Content beta already has under other names: beta reuses it (a local copy), and alpha
    # reuses beta's own copies in return: none of it travels, none of it is counted.
    for index, content in enumerate(list(files.values())[:12]):
        put(beta, f"had/h{index}.bin", content)
    beta_had = {hashlib.sha256(c).digest() for c in list(files.values())[:12]}
    throttled.sync("create", alpha, beta, "-n", "prog", "--paused")
    with tempfile.TemporaryFile() as output:
        monitor = start_monitor(throttled, "prog", output)
        try:
            throttled.sync("resume", "prog")
            session, _ = watch_staging(throttled, "prog", "beta")
        finally:
            lines = stop_monitor(monitor, output)
    assert check_monitor_lines(lines, "beta") >= 2, lines[-5:]
    assert any(" ETA " in line for line in lines), lines[-5:]
    expected_files, expected_bytes = travelling(files, beta_had)
    assert_final(session["beta"]["lastStagingProgress"], expected_files, expected_bytes)
    # alpha received beta's 12 files, all reused from alpha's own copies: nothing travelled
    assert_final(session["alpha"]["lastStagingProgress"], 0, 0)
    for relative, content in files.items():
        with open(os.path.join(beta, relative), "rb") as stream:
            assert stream.read() == content, relative


@pytest.fixture
def slow():
    handle, root = start_daemon(rate=1024 * 1024)  # a 4 MiB file takes 4 s
    yield handle
    stop_daemon(handle, root)


def test_file_changed_while_sent_leaves_the_counts_and_travels_again(slow, tmp_path):
    """A big file rewritten (and grown) while it is being sent does not verify: it is fetched
    again whole once (expected once more), does not verify again (its digest is the old one),
    and leaves the pass's expected file count (expected may fall, received never does); that
    pass's final numbers add up, and the next pass carries just that file."""
    alpha, beta = str(tmp_path / "alpha"), str(tmp_path / "beta")
    files = make_tree(alpha, small=100, big=2, big_size=4 * 1024 * 1024)
    all_files, _ = travelling(files, set())
    slow.sync("create", alpha, beta, "-n", "changing", "--paused")
    slow.sync("resume", "changing")
    previous: dict = {}
    changed = None
    finals: list[dict] = []  # each pass's final numbers, as lastStagingProgress showed them
    new_content = os.urandom(4 * 1024 * 1024 + 4096)  # grown
    deadline = time.monotonic() + TIMEOUT

    def arrived() -> bool:
        with open(os.path.join(beta, changed), "rb") as stream:
            return stream.read() == new_content

    while True:
        assert time.monotonic() < deadline, f"the changed file never arrived: {finals}"
        session = json.loads(slow.sync("list", "--json", "changing").stdout)[0]
        check_json_sample(session, previous)
        final = session["beta"].get("lastStagingProgress")
        if final is not None and final not in finals[-1:]:
            finals.append(final)
        progress = session["beta"]["stagingProgress"]
        if changed is None and progress is not None and progress["path"].startswith("big/") \
                and 0 < progress["receivedSize"] <= progress["expectedSize"] // 4:
            # a quarter arrived: the sender read at most one batch (1 MiB) more, plus what
            # happened while this sample travelled; the rest is read after the change
            changed = progress["path"]
            put(alpha, changed, new_content)
        if changed is not None and session["status"] == "watching" and \
                os.path.exists(os.path.join(beta, changed)) and arrived():
            break
    assert changed is not None, "no big file was seen half-way"
    assert session["lastError"] == "", session["lastError"]
    for final in finals:
        assert_final(final, final["expectedFiles"], final["totalExpectedSize"])
    # the first pass (seen as the last one during the ~4 s of the next): all but the changed
    # file, and every byte that travelled, the changed file's two attempts included
    _, others = travelling({p: c for p, c in files.items() if p != changed}, set())
    assert finals[0]["expectedFiles"] == all_files - 1, finals
    assert finals[0]["totalExpectedSize"] > others + 1024 * 1024, (finals, others)
    # the last pass carried just the changed file, whole
    assert_final(finals[-1], 1, len(new_content))
    files[changed] = new_content
    for relative, content in files.items():
        with open(os.path.join(beta, relative), "rb") as stream:
            assert stream.read() == content, relative


@pytest.fixture
def throttled_ssh(sshd):  # noqa: F811
    handle, root = start_daemon(sshd.client.directory, rate=RATE // 2)
    yield handle
    stop_daemon(handle, root)


def test_ssh_progress_adds_up(throttled_ssh, sshd, tmp_path):  # noqa: F811
    alpha = str(tmp_path / "alpha")
    remote = os.path.join(sshd.home, "progress")
    shutil.rmtree(remote, ignore_errors=True)
    files = make_tree(alpha, small=200, big=2, big_size=5 * 1024 * 1024)
    try:
        # create connects first (the first connect installs the agent), then staging starts
        throttled_ssh.sync("create", alpha, "testhost:progress", "-n", "remote", timeout=240)
        session, first = watch_staging(throttled_ssh, "remote", "beta")
        # The pass starts out expecting exactly what travels. Its final numbers add up; they
        # are asserted equal to that only loosely: the test login user's home is shared by
        # every sshd fixture on the machine, and a fixture starting elsewhere empties its data
        # directory (staging included), which makes files fail and travel again in a new pass.
        expected_files, expected_bytes = travelling(files, set())
        assert (first["expectedFiles"], first["totalExpectedSize"]) == \
            (expected_files, expected_bytes), first
        final = session["beta"]["lastStagingProgress"]
        assert_final(final, final["expectedFiles"], final["totalExpectedSize"],
                     daemon=throttled_ssh)
        assert final["expectedFiles"] <= expected_files, final
        assert session["alpha"].get("lastStagingProgress") is None  # nothing went to alpha
        for relative, content in files.items():
            with open(os.path.join(remote, relative), "rb") as stream:
                assert stream.read() == content, relative
    finally:
        throttled_ssh.sync("terminate", "remote", check=False)
        shutil.rmtree(remote, ignore_errors=True)
