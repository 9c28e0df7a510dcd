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
- Records are packed ``bytes`` in ``directories[parent][name]``: ``META`` (size, mtime_ns,
  inode, mode as little-endian int64, int64, uint64, uint32; 28 bytes) followed by the digest.
  One object per file instead of a tuple of five (about 80 instead of 200 bytes a file on a
  64-bit CPython; see docs/architecture.md, memory). The scanner reads those dicts directly, for
  speed, with ``pack_meta``/``digest_of``; ``record(path)`` / ``get(path)`` return the unpacked
  ``CacheRecord``; ``put`` / ``discard`` use full paths.
- File format version 2 stores the packed records; a version-1 file (records as 5-tuples) is
  converted when loaded.
"""

from __future__ import annotations

import os
import struct
import time
from typing import Iterator, NamedTuple, Optional

import msgspec
import structlog

from .atomic import write_atomically
from .settings import HashAlgorithm, TEMPORARY_PREFIX

FORMAT_VERSION = 2

# The mtime of a record whose file was modified too recently when it was hashed to be trusted on
# metadata alone (a second write in the same timestamp tick would keep size and mtime: the
# "racy" file problem). No lstat result matches it, so the next scan re-hashes the file, and a
# transition verifies its content by hashing instead of trusting the record.
RACY_MTIME = -1
# How recent is "too recent" (``racy``) depends on the timestamps the filesystem keeps. One with
# a sub-second part comes from a filesystem that keeps them finer than a second, stamped from the
# kernel's coarse clock (a tick of 1-10 ms) or finer (exFAT: 10 ms units): FINE_RACY_WINDOW_NS
# covers that with room to spare. One on a whole second may come from a filesystem that keeps
# seconds (ext3, HFS+: 1 s; FAT: 2 s): RACY_WINDOW_NS. (A fine timestamp that falls on a whole
# second by chance only takes the longer window.) Why it matters: an initial sync writes its
# files within seconds of recording them; with 2 s for all, the confirmation cycle right after a
# 100k-file sync re-read ~1 GB on the receiving side.
RACY_WINDOW_NS = 2_000_000_000
FINE_RACY_WINDOW_NS = 100_000_000
_SECOND_NS = 1_000_000_000


def racy(mtime_ns: int, now_ns: int) -> bool:
    """Whether a file modified at ``mtime_ns`` is too recent to be trusted on its metadata by a
    record whose metadata was taken after ``now_ns`` (a ``time.time_ns()`` reading): a later
    write could keep size and modification time. Pure."""
    if mtime_ns < now_ns - RACY_WINDOW_NS:
        return False
    return mtime_ns % _SECOND_NS == 0 or mtime_ns >= now_ns - FINE_RACY_WINDOW_NS

log = structlog.get_logger(__name__)


class CacheRecord(NamedTuple):
    size: int
    mtime_ns: int
    inode: int
    mode: int
    digest: bytes


# size, mtime_ns, inode, mode: the part of a record an lstat result is compared with.
META = struct.Struct("<qqQI")
META_SIZE = META.size
pack_meta = META.pack


def pack(size: int, mtime_ns: int, inode: int, mode: int, digest: bytes) -> bytes:
    """The packed record (``struct.error`` if a number does not fit its field)."""
    return pack_meta(size, mtime_ns, inode, mode) + digest


def unpack(record: bytes) -> CacheRecord:
    return CacheRecord(*META.unpack_from(record), record[META_SIZE:])


def digest_of(record: bytes) -> bytes:
    return record[META_SIZE:]


def size_of(record: bytes) -> int:
    return META.unpack_from(record)[0]


def mode_of(record: bytes) -> int:
    return META.unpack_from(record)[3]


class _CacheHeader(msgspec.Struct, array_like=True):
    version: int
    algorithm: str
    directories: msgspec.Raw


class _CacheFile(msgspec.Struct, array_like=True):
    version: int
    algorithm: str
    # directory path -> {name -> packed record}
    directories: dict[str, dict[str, bytes]]


_encoder = msgspec.msgpack.Encoder()
_header_decoder = msgspec.msgpack.Decoder(_CacheHeader)
_decoders = {
    1: msgspec.msgpack.Decoder(dict[str, dict[str, tuple[int, int, int, int, bytes]]]),
    2: msgspec.msgpack.Decoder(dict[str, dict[str, bytes]]),
}


def split(path: str) -> tuple[str, str]:
    """``(parent directory path, name)`` of a root-relative path (the root is ``("", "")``)."""
    parent, _, name = path.rpartition("/")
    return parent, name


class DigestCache:
    """In-memory digest cache with atomic persistence and a lazily built reverse map.

    Records are grouped by parent directory (``directories[parent][name]``): a scan looks a
    directory's map up once and then works on a small dict, which is markedly faster on big
    trees than one flat map of full paths.
    """

    __slots__ = ("algorithm", "directories", "_reverse")

    def __init__(self, algorithm: HashAlgorithm = HashAlgorithm.XXH128, directories: Optional[dict] = None):
        self.algorithm = HashAlgorithm(algorithm)
        self.directories: dict[str, dict[str, bytes]] = directories if directories is not None else {}
        self._reverse: Optional[dict[bytes, list[str]]] = None

    def __len__(self) -> int:
        return sum(len(records) for records in self.directories.values())

    def __contains__(self, path: str) -> bool:
        return self.record(path) is not None

    def paths(self) -> Iterator[str]:
        for parent, records in self.directories.items():
            for name in records:
                yield f"{parent}/{name}" if parent else name

    def packed(self, path: str) -> Optional[bytes]:
        """The packed record of ``path`` or None."""
        parent, name = split(path)
        records = self.directories.get(parent)
        return None if records is None else records.get(name)

    def record(self, path: str) -> Optional[CacheRecord]:
        """The record ``(size, mtime_ns, inode, mode, digest)`` of ``path`` or None."""
        packed = self.packed(path)
        return None if packed is None else unpack(packed)

    get = record

    def put(self, path: str, size: int, mtime_ns: int, inode: int, mode: int, digest: bytes) -> None:
        parent, name = split(path)
        self.directories.setdefault(parent, {})[name] = pack(size, mtime_ns, inode, mode, digest)
        self._reverse = None

    def put_stat(self, path: str, st: os.stat_result, digest: bytes) -> None:
        """Record ``digest`` for a file with lstat ``st``; a file modified within the last
        ``racy`` window gets a racy record (verified by content before it is trusted)."""
        mtime = RACY_MTIME if racy(st.st_mtime_ns, time.time_ns()) else st.st_mtime_ns
        self.put(path, st.st_size, mtime, st.st_ino, st.st_mode, digest)

    def put_stats(self, parent: str, placed: list, now_ns: int) -> None:
        """``put_stat`` for files of directory ``parent``: ``placed`` holds ``(name, lstat,
        digest)``; ``now_ns`` is a ``time.time_ns()`` read before the first of them was placed
        (a record is racy at least as often as with ``put_stat``). One lookup of the
        directory's records for all of them."""
        if not placed:
            return
        limit = now_ns - RACY_WINDOW_NS
        records = self.directories.setdefault(parent, {})
        for name, st, digest in placed:
            mtime = st.st_mtime_ns
            if mtime >= limit and racy(mtime, now_ns):
                mtime = RACY_MTIME
            records[name] = pack_meta(st.st_size, mtime, st.st_ino, st.st_mode) + digest
        self._reverse = None

    def discard(self, path: str) -> None:
        parent, name = split(path)
        records = self.directories.get(parent)
        if records is not None and records.pop(name, None) is not None:
            if not records:
                del self.directories[parent]
            self._reverse = None

    def discard_below(self, path: str) -> None:
        """Forget ``path`` and everything below it (``""`` clears the cache)."""
        if path == "":
            self.directories.clear()
        else:
            self.discard(path)
            prefix = path + "/"
            for parent in [p for p in self.directories if p == path or p.startswith(prefix)]:
                del self.directories[parent]
        self._reverse = None

    def replace(self, directories: dict) -> None:
        self.directories = directories
        self._reverse = None

    def matching_digest(self, path: str, st: os.stat_result) -> Optional[bytes]:
        """The cached digest if ``st`` still matches the record for ``path``, else None."""
        record = self.packed(path)
        if record is None or st.st_mtime_ns == RACY_MTIME:
            return None
        if record.startswith(pack_meta(st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode)):
            return record[META_SIZE:]
        return None

    def paths_for(self, digest: bytes) -> list[str]:
        """Paths whose cached content has ``digest`` (reverse map, rebuilt after changes)."""
        if self._reverse is None:
            reverse: dict[bytes, list[str]] = {}
            for parent, records in self.directories.items():
                for name, record in records.items():
                    reverse.setdefault(record[META_SIZE:], []).append(
                        f"{parent}/{name}" if parent else name)
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
            header = _header_decoder.decode(data)
            decoder = _decoders.get(header.version)
            if decoder is None or header.algorithm != algorithm.value:
                log.info(
                    "digest cache from another format or hash, starting empty",
                    file=file,
                    version=header.version,
                    algorithm=header.algorithm,
                )
                return cls(algorithm)
            directories = decoder.decode(header.directories)
            if header.version == 1:
                directories = {
                    parent: {name: pack(*record) for name, record in records.items()}
                    for parent, records in directories.items()
                }
        except (msgspec.DecodeError, msgspec.ValidationError, struct.error) as error:
            log.warning("digest cache corrupt, starting empty", file=file, error=str(error))
            return cls(algorithm)
        return cls(algorithm, directories)

    def save(self, file: str) -> None:
        """Atomically replace ``file`` with this cache (temp file, fsync, rename, fsync dir)."""
        directories = {
            parent: {name: record for name, record in records.items() if utf8_encodable(name)}
            for parent, records in self.directories.items()
            if utf8_encodable(parent)
        }
        data = _encoder.encode(_CacheFile(FORMAT_VERSION, self.algorithm.value, directories))
        write_atomically(
            file, data, mode=0o600, temporary_prefix=f"{TEMPORARY_PREFIX}cache-", tolerate_directory_errors=True
        )


def utf8_encodable(path: str) -> bool:
    """Whether ``path`` holds no stand-ins for undecodable bytes (``surrogateescape``)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def records(cache: DigestCache) -> Iterator[tuple[str, CacheRecord]]:
    """All records, as ``(path, CacheRecord)`` pairs."""
    for parent, entries in cache.directories.items():
        for name, record in entries.items():
            yield (f"{parent}/{name}" if parent else name), unpack(record)
