"""The accounting of a staging pass (``actors.syncsession.staging_progress``): table of event
sequences -> the numbers users read, and the invariants after every single event."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.syncsession.staging_progress import StagingTracker
from mutagen_actors.wire.messages.endpoint import Chunk
from mutagen_actors.wire.messages.sync import StagingProgress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def chunk(path, offset, size, length, eof=None, error=""):
    eof = offset + length >= size if eof is None else eof
    return Chunk(path, b"d", offset, size, b"x" * length, eof, error)


def delta_chunk(path, offset, size, span):
    return Chunk(path, b"d", offset, size, b"", offset + span >= size, "", [], span)


def numbers(progress: StagingProgress) -> tuple:
    return (progress.received_files, progress.expected_files, progress.total_received_size,
            progress.total_expected_size)


def check_invariants(before: StagingProgress, after: StagingProgress) -> None:
    assert 0 <= after.received_files <= after.expected_files
    assert 0 <= after.total_received_size <= after.total_expected_size
    assert after.received_size <= after.expected_size
    assert after.received_files >= before.received_files
    assert after.total_received_size >= before.total_received_size
    assert after.seconds_remaining == -1.0 or after.seconds_remaining >= 0


SIZES = {"a": 10, "big": 3000, "c": 0}

# (name, sizes, events, (received files, expected files, received bytes, expected bytes) after
# finish). An event is ("ack", [chunks], [failed paths]), ("restart", path) or ("finish",).
CASES = [
    ("all files arrive whole",
     SIZES, [("ack", [chunk("a", 0, 10, 10), chunk("big", 0, 3000, 1000)], []),
             ("ack", [chunk("big", 1000, 3000, 1000)], []),
             ("ack", [chunk("big", 2000, 3000, 1000), chunk("c", 0, 0, 0)], [])],
     (3, 3, 3010, 3010)),
    ("a file grew since the sizes were asked",
     {"a": 10}, [("ack", [chunk("a", 0, 25, 25)], [])], (1, 1, 25, 25)),
    ("a file shrank since the sizes were asked",
     {"a": 10}, [("ack", [chunk("a", 0, 4, 4)], [])], (1, 1, 4, 4)),
    ("unknown size counts once content says",
     {"a": -1, "c": 0}, [("ack", [chunk("a", 0, 7, 7), chunk("c", 0, 0, 0)], [])], (2, 2, 7, 7)),
    ("unreadable file leaves the expected counts",
     SIZES, [("ack", [chunk("a", 0, 0, 0, True, "unable to read file"),
                      chunk("big", 0, 3000, 1000)], ["a"]),
             ("ack", [chunk("big", 1000, 3000, 2000), chunk("c", 0, 0, 0)], [])],
     (2, 2, 3000, 3000)),
    ("a big file that fails half-way counts what was received of it",
     SIZES, [("ack", [chunk("a", 0, 10, 10), chunk("big", 0, 3000, 1000)], []),
             ("ack", [chunk("big", 1000, 3000, 1000)], ["big"]),
             ("ack", [chunk("big", 2000, 3000, 1000)], ["big"]),  # the pipelined rest fails too
             ("ack", [chunk("c", 0, 0, 0)], [])],
     (2, 2, 1010, 1010)),
    ("content changed while sent: the last piece does not verify",
     {"big": 3000}, [("ack", [chunk("big", 0, 3000, 2000)], []),
                     ("ack", [chunk("big", 2000, 3000, 1000)], ["big"])],
     (0, 0, 2000, 2000)),
    ("a file shrank under a multi-piece read: eof past the new size, then it fails",
     {"big": 3000}, [("ack", [chunk("big", 0, 3000, 2000)], []),
                     ("ack", [chunk("big", 2000, 1000, 0, True)], ["big"])],
     (0, 0, 2000, 2000)),
    ("a resumed file counts its staged prefix",
     {"big": 3000}, [("ack", [chunk("big", 2000, 3000, 1000)], [])], (1, 1, 3000, 3000)),
    ("the pass ends before a file arrived (it did not travel)",
     SIZES, [("ack", [chunk("a", 0, 10, 10)], []), ("finish",)], (1, 1, 10, 10)),
    ("unknown paths in an answer are ignored",
     {"a": 10}, [("ack", [chunk("zzz", 0, 5, 5), chunk("a", 0, 10, 10)], ["yyy"])],
     (1, 1, 10, 10)),
    ("a file acknowledged twice counts once",
     {"a": 10}, [("ack", [chunk("a", 0, 10, 10)], []), ("ack", [chunk("a", 0, 10, 10)], [])],
     (1, 1, 10, 10)),
    ("nothing to stage", {}, [], (0, 0, 0, 0)),
    ("a delta counts the bytes it produces",
     {"big": 3000}, [("ack", [delta_chunk("big", 0, 3000, 2000)], []),
                     ("ack", [delta_chunk("big", 2000, 3000, 1000)], [])], (1, 1, 3000, 3000)),
    ("a file fetched again whole is expected once more; what travelled stays received",
     {"big": 3000, "a": 10},
     [("ack", [chunk("big", 0, 3000, 2000)], []), ("restart", "big"),
      ("ack", [chunk("big", 0, 3000, 1000)], []), ("ack", [chunk("big", 1000, 3000, 2000)], []),
      ("ack", [chunk("a", 0, 10, 10)], [])],
     (2, 2, 5010, 5010)),
    ("a file fetched again that fails again counts what travelled",
     {"big": 3000},
     [("ack", [delta_chunk("big", 0, 3000, 3000)], ["big"]), ("restart", "big"),
      ("ack", [chunk("big", 0, 3000, 1000)], [])],
     (0, 0, 0, 0)),  # the failure came first: refetching a failed file changes nothing
    ("restarted, then the pass ends before it arrived",
     {"big": 3000},
     [("ack", [chunk("big", 0, 3000, 1000)], []), ("restart", "big"),
      ("ack", [chunk("big", 0, 3000, 500)], []), ("finish",)],
     (0, 0, 1500, 1500)),
]


@pytest.mark.parametrize("name, sizes, events, final", CASES, ids=[c[0] for c in CASES])
def test_numbers_add_up(name, sizes, events, final):
    progress = StagingProgress()
    tracker = StagingTracker(progress, Clock())
    tracker.expect(sizes)
    assert numbers(progress) == (0, len(sizes), 0, sum(max(0, s) for s in sizes.values()))
    for event in events:
        before = StagingProgress(**{f: getattr(progress, f)
                                    for f in StagingProgress.__struct_fields__})
        if event[0] == "ack":
            tracker.acknowledged(event[1], event[2])
        elif event[0] == "restart":
            tracker.restarted(event[1])
        else:
            tracker.finish()
        check_invariants(before, progress)
    tracker.finish()
    assert numbers(progress) == final
    assert progress.received_files == progress.expected_files
    assert progress.total_received_size == progress.total_expected_size


@pytest.mark.parametrize("acks, current", [
    ([[chunk("big", 0, 3000, 1000)]], ("big", 1000, 3000)),
    ([[chunk("big", 0, 3000, 1000), chunk("a", 0, 10, 10)]], ("a", 10, 10)),
    ([[chunk("big", 0, 3000, 1000)], [chunk("big", 1000, 3000, 2000)]], ("big", 3000, 3000)),
])
def test_current_file_is_the_last_acknowledged(acks, current):
    progress = StagingProgress()
    tracker = StagingTracker(progress, Clock())
    tracker.expect(SIZES)
    for ack in acks:
        tracker.acknowledged(ack, [])
    assert (progress.path, progress.received_size, progress.expected_size) == current


def test_current_file_that_fails_shows_what_was_received():
    progress = StagingProgress()
    tracker = StagingTracker(progress, Clock())
    tracker.expect({"big": 3000})
    tracker.acknowledged([chunk("big", 0, 3000, 1000)], [])
    tracker.acknowledged([chunk("big", 1000, 3000, 1000)], ["big"])
    assert (progress.path, progress.received_size, progress.expected_size) == ("big", 1000, 1000)


@pytest.mark.parametrize("elapsed, received, expected_eta", [
    (0.2, 1000, -1.0),  # too early for a rate
    (1.0, 0, -1.0),  # no bytes yet
    (1.0, 1000, 2.0),  # 1000 B/s, 2000 B left
    (2.0, 3000, 0.0),  # done
])
def test_estimate(elapsed, received, expected_eta):
    clock = Clock()
    progress = StagingProgress()
    tracker = StagingTracker(progress, clock)
    tracker.expect({"big": 3000})
    clock.now += elapsed
    tracker.acknowledged([chunk("big", 0, 3000, received)], [])
    assert progress.seconds_remaining == pytest.approx(expected_eta)


def test_finish_leaves_no_estimate_of_time_left():
    clock = Clock()
    progress = StagingProgress()
    tracker = StagingTracker(progress, clock)
    tracker.expect({"big": 3000})
    clock.now += 1.0
    tracker.acknowledged([chunk("big", 0, 3000, 1000)], [])
    tracker.acknowledged([chunk("big", 1000, 3000, 2000)], [])
    tracker.finish()
    assert progress.seconds_remaining == 0.0


def test_current_file_fetched_again_restarts_from_zero():
    progress = StagingProgress()
    tracker = StagingTracker(progress, Clock())
    tracker.expect({"big": 3000})
    tracker.acknowledged([chunk("big", 0, 3000, 2000)], [])
    tracker.restarted("big")
    assert (progress.path, progress.received_size, progress.expected_size) == ("big", 0, 3000)
    assert (progress.total_received_size, progress.total_expected_size) == (2000, 5000)


def test_resumed_prefix_is_received_from_the_start_and_not_part_of_the_rate():
    clock = Clock()
    progress = StagingProgress()
    tracker = StagingTracker(progress, clock)
    tracker.expect({"big": 3000, "a": 10}, {"big": 2000})
    assert numbers(progress) == (0, 2, 2000, 3010)
    clock.now += 1.0
    tracker.acknowledged([chunk("big", 2000, 3000, 500)], [])  # 500 B moved in 1 s
    assert progress.seconds_remaining == pytest.approx(510 / 500)
    tracker.acknowledged([chunk("big", 2500, 3000, 500), chunk("a", 0, 10, 10)], [])
    tracker.finish()
    assert numbers(progress) == (2, 2, 3010, 3010)
