"""The local staging store: content waiting to be moved into the root, addressed by digest.

Layout: ``<store>/<first 2 hex chars>/<digest hex>``. A file only ever appears under its final name
after its content has been verified against the digest: ``receive`` writes to a temporary name in
the same directory, hashes while writing, and renames only on a match. So whatever ``has`` and
``path_for`` point at is complete and correct, even after a crash mid-write (leftover temporary
names are ignored and removed by ``wipe``).

Failure rules:
- ``StagingError`` (a ``ValueError``): digest mismatch, a file beyond ``max_file_size``, or a
  digest of the wrong length. Nothing is left under the final name.
- OSError from the filesystem propagates (disk full, permissions).

Where the store lives (``staging_directory``): in the daemon's data directory (default), next to
the root (``neighboring``) or inside the root (``internal``); the last two use a
``TEMPORARY_PREFIX`` name so scans never see them and the final rename stays on one filesystem.
"""

from __future__ import annotations

import os
import secrets
import shutil
from typing import Iterable, Iterator, Optional

from .hashing import DIGEST_SIZES, new_hasher
from .settings import TEMPORARY_PREFIX, HashAlgorithm, StageMode

_PARTIAL = ".partial-"


class StagingError(ValueError):
    """Content could not be staged (mismatch, too big, bad digest)."""


def staging_directory(mode: StageMode, *, root: str, session: str, side: str, data_directory: str) -> str:
    """The store directory for one session side under the given stage mode."""
    mode = StageMode(mode)
    name = f"{session}-{side}"
    if mode is StageMode.DATA_DIRECTORY:
        return os.path.join(data_directory, "staging", name)
    if mode is StageMode.NEIGHBORING:
        parent = os.path.dirname(os.path.abspath(root))
        return os.path.join(parent, f"{TEMPORARY_PREFIX}staging-{name}")
    return os.path.join(os.path.abspath(root), f"{TEMPORARY_PREFIX}staging-{name}")


class Staging:
    """A content-addressed store of verified files for one session side."""

    def __init__(self, directory: str, algorithm: HashAlgorithm = HashAlgorithm.XXH128, *, max_file_size: int = 0):
        self.directory = directory
        self.algorithm = HashAlgorithm(algorithm)
        self.max_file_size = max_file_size

    def _check(self, digest: bytes) -> str:
        if not isinstance(digest, (bytes, bytearray)) or len(digest) != DIGEST_SIZES[self.algorithm]:
            raise StagingError(f"invalid {self.algorithm.value} digest {digest!r}")
        return bytes(digest).hex()

    def path_for(self, digest: bytes) -> str:
        """Where the verified content for ``digest`` lives (whether or not it is there yet)."""
        text = self._check(digest)
        return os.path.join(self.directory, text[:2], text)

    def has(self, digest: bytes) -> bool:
        return os.path.isfile(self.path_for(digest))

    def receive(self, digest: bytes, chunks: Iterable[bytes]) -> str:
        """Write ``chunks`` as the content of ``digest``; verify, then publish. Returns the path."""
        final = self.path_for(digest)
        bucket = os.path.dirname(final)
        os.makedirs(bucket, mode=0o700, exist_ok=True)
        temporary = f"{final}{_PARTIAL}{secrets.token_hex(6)}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        published = False
        try:
            hasher = new_hasher(self.algorithm)
            size = 0
            try:
                for chunk in chunks:
                    size += len(chunk)
                    if self.max_file_size and size > self.max_file_size:
                        raise StagingError(
                            f"staged file exceeds the maximum staging file size ({self.max_file_size} bytes)"
                        )
                    hasher.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            actual = hasher.digest()
            if actual != digest:
                raise StagingError(
                    f"staged content does not match its digest (expected {bytes(digest).hex()}, got {actual.hex()})"
                )
            os.rename(temporary, final)
            published = True
            return final
        finally:
            if not published:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass

    def receive_file(self, digest: bytes, source: str, *, dir_fd: Optional[int] = None) -> str:
        """Stage a copy of a local file (content reuse from the root), verified like ``receive``."""
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "rb", closefd=False) as handle:
                return self.receive(digest, iter(lambda: handle.read(1 << 20), b""))
        finally:
            os.close(fd)

    def discard(self, digest: bytes) -> None:
        try:
            os.unlink(self.path_for(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> Iterator[bytes]:
        """Digests currently staged (complete, verified files only)."""
        try:
            buckets = os.scandir(self.directory)
        except FileNotFoundError:
            return
        with buckets:
            for bucket in buckets:
                if not bucket.is_dir(follow_symlinks=False) or len(bucket.name) != 2:
                    continue
                with os.scandir(bucket.path) as files:
                    for item in files:
                        if _PARTIAL in item.name:
                            continue
                        try:
                            yield bytes.fromhex(item.name)
                        except ValueError:
                            continue

    def wipe(self) -> None:
        """Remove the whole store (staged and partial files)."""
        shutil.rmtree(self.directory, ignore_errors=True)
