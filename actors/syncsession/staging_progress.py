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
- ``path``, ``received_size``, ``expected_size``: the file whose bytes were acknowledged last
  (its current attempt: a file fetched again whole restarts from 0).
- A file sent as a delta counts the bytes it produces (copied from the receiver's old version or
  sent as literals), so expected is its size whether or not it travels as a delta. A file
  fetched again whole after a failed delta or verification (``restarted``) keeps what it
  received and is expected once more: the totals count every byte the pass moved.
- ``seconds_remaining``: bytes left / average rate since the pass started (a resumed prefix is
  not part of the rate); -1 until there is a rate (``MIN_ELAPSED`` seconds and some bytes).

Invariants after every call: ``0 <= received_files <= expected_files``, ``0 <=
total_received_size <= total_expected_size``, ``received_size <= expected_size``, received numbers
never decrease, ``seconds_remaining`` is -1 or >= 0. After ``finish()``, which the stager calls
when every file was either staged or failed, received equals expected (files and bytes).
Counters belong to one pass: a cycle that fails and runs again starts a new pass (what the first
one staged is then reused, so the new pass expects less). Unknown paths are ignored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

from mutagen_actors.wire.messages.sync import StagingProgress

MIN_ELAPSED = 0.5


@dataclass(slots=True)
class _File:
    expected: int  # size of the content of the current attempt
    received: int = 0  # bytes of the current attempt in staging (a resumed prefix included)
    earlier: int = 0  # bytes of earlier attempts, discarded when the file was fetched again
    finished: bool = False  # staged or failed


class StagingTracker:
    def __init__(self, progress: StagingProgress,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = progress
        self._clock = clock
        self._started = clock()
        self._files: dict[str, _File] = {}
        self._resumed = 0  # not transferred in this pass: left out of the rate

    def expect(self, sizes: Mapping[str, int], offsets: Optional[Mapping[str, int]] = None) -> None:
        """The files that will travel and their sizes as the sender reported them (negative:
        unknown, counted as 0 until content says); ``offsets``: verified prefixes the receiver
        already holds (a resumed transfer), received from the start. Starts the clock."""
        progress = self.progress
        files = self._files
        offsets = offsets or {}
        for path, size in sizes.items():
            if path in files:
                continue
            offset = offsets.get(path, 0) if offsets else 0
            if offset > 0:
                files[path] = _File(max(size, offset), offset)
                progress.total_received_size += offset
                self._resumed += offset
            else:
                files[path] = _File(size if size > 0 else 0)
        progress.expected_files = len(files)
        progress.total_expected_size = sum(f.earlier + f.expected for f in files.values())
        self._started = self._clock()

    def written(self, path: str, end: int, size: int) -> None:
        """The receiver now holds ``path``'s content up to offset ``end``; the file measured
        ``size`` bytes when that content was read."""
        if self._write(path, end, size):
            self._estimate()

    def _write(self, path: str, end: int, size: int) -> bool:
        file = self._files.get(path)
        if file is None or file.finished:
            return False
        progress = self.progress
        received = end if end > file.received else file.received
        expected = size if size > received else received
        progress.total_received_size += received - file.received
        progress.total_expected_size += expected - file.expected
        file.received, file.expected = received, expected
        progress.path, progress.received_size, progress.expected_size = path, received, expected
        return True

    def restarted(self, path: str) -> None:
        """The receiver discarded what it had of ``path`` (a delta failed, the content did not
        verify) and it is fetched again whole: its bytes so far stay received (they did travel)
        and it is expected once more."""
        file = self._files.get(path)
        if file is None or file.finished:
            return
        self.progress.total_expected_size += file.received
        file.earlier += file.received
        file.received = 0
        if self.progress.path == path:
            self.progress.received_size = 0

    def completed(self, path: str) -> None:
        """``path`` is staged and verified (its whole content was written)."""
        file = self._files.get(path)
        if file is None or file.finished:
            return
        self._write(path, file.expected, file.expected)  # verified whole: all of it is there
        file.finished = True
        self.progress.received_files += 1

    def failed(self, path: str) -> None:
        """``path`` will not be staged in this pass: it leaves the expected counts."""
        file = self._files.get(path)
        if file is None or file.finished:
            return
        file.finished = True
        progress = self.progress
        progress.expected_files -= 1
        progress.total_expected_size += file.received - file.expected
        file.expected = file.received
        if progress.path == path:
            progress.expected_size = progress.received_size
        self._estimate()

    def acknowledged(self, chunks: Iterable, failed_paths: Iterable[str]) -> None:
        """A ``StageChunks`` write answered: ``chunks`` (``Chunk``: path, offset, size, output,
        eof, error) were written, except for the paths in ``failed_paths`` (the ack's problems),
        which failed; a chunk with ``eof`` of a path that did not fail completed its file."""
        failed = set(failed_paths)
        files, progress = self._files, self.progress
        for chunk in chunks:
            path = chunk.path
            if path in failed or chunk.error:
                self.failed(path)
                continue
            file = files.get(path)
            if chunk.eof and file is not None and not file.finished:
                # Written to its end and completed (``_write`` then ``completed`` in one step).
                end = chunk.offset + chunk.output  # delta: span
                received = end if end > file.received else file.received
                size = chunk.size if chunk.size > received else received
                progress.total_received_size += size - file.received
                progress.total_expected_size += size - file.expected
                file.received = file.expected = size
                file.finished = True
                progress.path, progress.received_size, progress.expected_size = path, size, size
                progress.received_files += 1
                continue
            self._write(path, chunk.offset + chunk.output, chunk.size)
            if chunk.eof:
                self.completed(path)
        self._estimate()

    def finish(self) -> None:
        """The pass is over: whatever neither completed nor failed did not arrive (it failed)."""
        for path in [path for path, file in self._files.items() if not file.finished]:
            self.failed(path)
        self.progress.seconds_remaining = 0.0

    def _estimate(self) -> None:
        progress = self.progress
        elapsed = self._clock() - self._started
        moved = progress.total_received_size - self._resumed
        if moved <= 0 or elapsed < MIN_ELAPSED:
            return
        remaining = progress.total_expected_size - progress.total_received_size
        progress.seconds_remaining = max(0.0, remaining / (moved / elapsed))
