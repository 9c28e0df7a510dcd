"""The persistent digest cache: path -> (size, mtime_ns, inode, mode, digest).

A file whose lstat metadata (size, modification time in ns, inode, whole ``st_mode``) equals its
cache record is not read again: its digest comes from the cache. The cache is also the record of
"what the last scan saw" that a transition checks before it overwrites or deletes anything, and
its reverse map (digest -> paths) lets staging reuse content already present in the root.

Contract and failure rules:
- ``DigestCache.load(file, algorithm)`` never fails on a missing, unreadable, corrupt or
  foreign-algorithm file: it logs and returns an empty cache.
- ``save(file)`` is atomic: it writes a temporary file next to ``file``, fsyncs it, renames it
  over ``file`` and fsyncs the directory; a crash leaves either the old or the new cache. OSError
  propagates to the caller (the cache is an optimisation; callers may log and go on).
- Records are plain tuples in ``entries`` (the scanner reads that dict directly, for speed).
"""

from __future__ import annotations

import os
import secrets
from typing import Iterable, NamedTuple, Optional

import msgspec
import structlog

from .settings import HashAlgorithm, TEMPORARY_PREFIX

FORMAT_VERSION = 1

log = structlog.get_logger(__name__)


class CacheRecord(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    mode: int
    digest: bytes


class _CacheFile(msgspec.Struct, array_like=True):
    version: int
    algorithm: str
    entries: dict[str, tuple[int, int, int, int, bytes]]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_CacheFile)


class DigestCache:
    """In-memory digest cache with atomic persistence and a lazily built reverse map."""

    __slots__ = ("algorithm", "entries", "_reverse")

    def __init__(self, algorithm: HashAlgorithm = HashAlgorithm.XXH128, entries: Optional[dict] = None):
        self.algorithm = HashAlgorithm(algorithm)
        # path -> (size, mtime_ns, inode, mode, digest)
        self.entries: dict[str, tuple] = entries if entries is not None else {}
        self._reverse: Optional[dict[bytes, list[str]]] = None

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, path: str) -> bool:
        return path in self.entries

    def get(self, path: str) -> Optional[CacheRecord]:
        record = self.entries.get(path)
        return None if record is None else CacheRecord(*record)

    def put(self, path: str, size: int, mtime_ns: int, inode: int, mode: int, digest: bytes) -> None:
        self.entries[path] = (size, mtime_ns, inode, mode, digest)
        self._reverse = None

    def put_stat(self, path: str, st: os.stat_result, digest: bytes) -> None:
        self.put(path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode, digest)

    def discard(self, path: str) -> None:
        if self.entries.pop(path, None) is not None:
            self._reverse = None

    def discard_below(self, path: str) -> None:
        """Forget ``path`` and everything below it (``""`` clears the cache)."""
        if path == "":
            self.entries.clear()
        else:
            prefix = path + "/"
            for key in [k for k in self.entries if k == path or k.startswith(prefix)]:
                del self.entries[key]
        self._reverse = None

    def replace_entries(self, entries: dict) -> None:
        self.entries = entries
        self._reverse = None

    def matching_digest(self, path: str, st: os.stat_result) -> Optional[bytes]:
        """The cached digest if ``st`` still matches the record for ``path``, else None."""
        record = self.entries.get(path)
        if record is None:
            return None
        if (
            record[0] == st.st_size
            and record[1] == st.st_mtime_ns
            and record[2] == st.st_ino
            and record[3] == st.st_mode
        ):
            return record[4]
        return None

    def paths_for(self, digest: bytes) -> list[str]:
        """Paths whose cached content has ``digest`` (reverse map, rebuilt after changes)."""
        if self._reverse is None:
            reverse: dict[bytes, list[str]] = {}
            for path, record in self.entries.items():
                reverse.setdefault(record[4], []).append(path)
            self._reverse = reverse
        return list(self._reverse.get(digest, ()))

    # Persistence -----------------------------------------------------------------------------

    @classmethod
    def load(cls, file: str, algorithm: HashAlgorithm = HashAlgorithm.XXH128) -> "DigestCache":
        """Load ``file``; on any problem log it and start empty."""
        algorithm = HashAlgorithm(algorithm)
        try:
            with open(file, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return cls(algorithm)
        except OSError as error:
            log.warning("digest cache unreadable, starting empty", file=file, error=str(error))
            return cls(algorithm)
        try:
            decoded = _decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            log.warning("digest cache corrupt, starting empty", file=file, error=str(error))
            return cls(algorithm)
        if decoded.version != FORMAT_VERSION or decoded.algorithm != algorithm.value:
            log.info(
                "digest cache from another format or hash, starting empty",
                file=file,
                version=decoded.version,
                algorithm=decoded.algorithm,
            )
            return cls(algorithm)
        return cls(algorithm, dict(decoded.entries))

    def save(self, file: str) -> None:
        """Atomically replace ``file`` with this cache (temp file, fsync, rename, fsync dir)."""
        entries = {path: record for path, record in self.entries.items() if _encodable(path)}
        data = _encoder.encode(_CacheFile(FORMAT_VERSION, self.algorithm.value, entries))
        directory = os.path.dirname(os.path.abspath(file))
        temporary = os.path.join(directory, f"{TEMPORARY_PREFIX}cache-{secrets.token_hex(8)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, file)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        _fsync_directory(directory)


def _encodable(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def records(cache: DigestCache) -> Iterable[tuple[str, CacheRecord]]:
    """All records, as ``(path, CacheRecord)`` pairs."""
    for path, record in cache.entries.items():
        yield path, CacheRecord(*record)
