"""Progress accounting of one staging pass (pure: no I/O; the clock is injected).

``StagingTracker(progress, clock)`` keeps a ``StagingProgress`` (mutated in place; the stager
publishes it with its job replies) true to these rules, so that the numbers users read add up:

- *Expected* counts only content that travels in this pass: the files the receiver still needs
  after reusing what it has (already staged, or copied locally from a file with the same
  digest; one file per distinct digest). Reused files are in neither count.
- ``expected_files``: those files; a file that fails (unreadable, changed while sent, does not
  verify) leaves the count (it is not staged in this pass; the next cycle tries again).
- ``received_files``: files staged and verified so far.
- ``total_expected_size``: sum of those files' sizes: the size the sender reported before the
  transfer, replaced by the size the file had when its content was read (it may have changed),
  never below what was already received of it; a failed file counts what was received of it.
- ``total_received_size``: content bytes now in the receiver's staging store (acknowledged by
  it, not merely read from the sender). A file resumed at an offset counts its resumed prefix.
- ``path``, ``received_size``, ``expected_size``: the file whose bytes were acknowledged last.
- ``seconds_remaining``: bytes left / average rate since the pass started; -1 until there is a
  rate (``MIN_ELAPSED`` seconds and some bytes).

Invariants after every call: ``0 <= received_files <= expected_files``, ``0 <=
total_received_size <= total_expected_size``, ``received_size <= expected_size``, received numbers
never decrease, ``seconds_remaining`` is -1 or >= 0. After ``finish()``, which the stager calls
when every file was either staged or failed, received equals expected (files and bytes).
Counters belong to one pass: a cycle that fails and runs again starts a new pass (what the first
one staged is then reused, so the new pass expects less). Unknown paths are ignored.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Mapping

from mutagen_actors.wire.messages.sync import StagingProgress

MIN_ELAPSED = 0.5


class StagingTracker:
    def __init__(self, progress: StagingProgress,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self._clock = clock
        self._started = clock()
        self._expected: dict[str, int] = {}
        self._received: dict[str, int] = {}
        self._finished: set[str] = set()  # staged or failed

    def expect(self, sizes: Mapping[str, int]) -> None:
        """The files that will travel and their sizes as the sender reported them (negative:
        unknown, counted as 0 until content says). Starts the clock of the estimate."""
        for path, size in sizes.items():
            if path in self._expected:
                continue
            self._expected[path] = max(0, size)
            self._received[path] = 0
        self.progress.expected_files = len(self._expected)
        self.progress.total_expected_size = sum(self._expected.values())
        self._started = self._clock()

    def written(self, path: str, end: int, size: int) -> None:
        """The receiver now holds ``path``'s content up to offset ``end``; the file measured
        ``size`` bytes when that content was read."""
        if path not in self._expected or path in self._finished:
            return
        progress = self.progress
        received = max(self._received[path], end)
        expected = max(size, received)
        progress.total_received_size += received - self._received[path]
        progress.total_expected_size += expected - self._expected[path]
        self._received[path], self._expected[path] = received, expected
        progress.path, progress.received_size, progress.expected_size = path, received, expected
        self._estimate()

    def completed(self, path: str) -> None:
        """``path`` is staged and verified (its whole content was written)."""
        if path not in self._expected or path in self._finished:
            return
        size = self._expected[path]
        self.written(path, size, size)  # verified whole: all of it is there
        self._finished.add(path)
        self.progress.received_files += 1

    def failed(self, path: str) -> None:
        """``path`` will not be staged in this pass: it leaves the expected counts."""
        if path not in self._expected or path in self._finished:
            return
        self._finished.add(path)
        progress = self.progress
        progress.expected_files -= 1
        progress.total_expected_size += self._received[path] - self._expected[path]
        self._expected[path] = self._received[path]
        if progress.path == path:
            progress.expected_size = progress.received_size
        self._estimate()

    def acknowledged(self, chunks: Iterable, failed_paths: Iterable[str]) -> None:
        """A ``StageChunks`` write answered: ``chunks`` (``Chunk``: path, offset, size, output,
        eof, error) were written, except for the paths in ``failed_paths`` (the ack's problems),
        which failed; a chunk with ``eof`` of a path that did not fail completed its file."""
        failed = set(failed_paths)
        for chunk in chunks:
            if chunk.path in failed or chunk.error:
                self.failed(chunk.path)
                continue
            self.written(chunk.path, chunk.offset + chunk.output, chunk.size)  # delta: span
            if chunk.eof:
                self.completed(chunk.path)

    def finish(self) -> None:
        """The pass is over: whatever neither completed nor failed did not arrive (it failed)."""
        for path in list(self._expected):
            if path not in self._finished:
                self.failed(path)
        self.progress.seconds_remaining = 0.0

    def _estimate(self) -> None:
        progress = self.progress
        elapsed = self._clock() - self._started
        if progress.total_received_size <= 0 or elapsed < MIN_ELAPSED:
            return
        rate = progress.total_received_size / elapsed
        remaining = progress.total_expected_size - progress.total_received_size
        progress.seconds_remaining = max(0.0, remaining / rate)
