"""Content-defined chunking of large files and their chunk signatures (the receiver's half of a delta).

A file is cut with FastCDC 2020 (``pyfastcdc``'s compiled chunker, normalized chunking 1, the
default gear table) and every chunk is named by its ``xxh3_128`` digest. Cut points depend only on
the bytes near them, so an insert or delete moves at most a chunk or two; everything else keeps
its digest and can be copied from the receiver's own file instead of crossing the wire.

Both ends must cut with the same chunker and the same parameters, or no chunk would ever match.
A ``Signature`` therefore carries a chunker id and the sizes it was cut with, and
``check_signature`` refuses anything this end would not cut identically (``SignatureMismatch``).

Contract:
- ``average_chunk_size(file_size)`` picks the average chunk size for a file (a power of two, 8 KiB
  up to 128 MiB files, then growing so a signature stays around 16k chunks, at most 4 MiB).
- ``chunker_parameters(avg_size)`` gives ``(min_size, avg_size, max_size)``: ``avg / 4``, ``avg``,
  ``avg * 4``. ``ValueError`` if ``avg_size`` is not a power of two in [256 B, 4 MiB].
- ``iter_chunks(file_or_path, avg_size)`` streams ``(offset, length, data)`` with ``data`` a
  memoryview valid only until the next chunk. Memory stays bounded (two maximum-size chunks).
- ``signature(file_or_path, *, avg_size=None)`` reads the file once and returns a ``Signature``.
  A path is opened without following a final symbolic link; a file object is read from its
  current position (pass it at offset 0: offsets in the signature count from where reading began).
  OSError propagates.
- Chunk digests are always xxh3_128, whatever the session's hash algorithm: they only steer the
  transfer. The rebuilt file is verified with the session's algorithm (see ``delta.apply_delta``).

The signature is wire-ready: a ``msgspec`` struct encoded as a msgpack array, holding the chunk
lengths and the digests concatenated (16 bytes each), ~19 bytes a chunk on the wire.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from contextlib import contextmanager
from typing import BinaryIO, Iterator, Optional, Union

import msgspec
import xxhash

# The compiled chunker; the pure-Python fallback runs at ~8 MB/s, which is no use here. Its
# presence is checked now, but it is loaded on first use (``_chunker``): ~2.4 MB resident in every
# process that imports this module (all actors, through the fork server) and never chunks.
def _compiled_chunker_present() -> bool:
    """Whether pyfastcdc's compiled extension is installed (without importing the package, whose
    ``__init__`` loads it)."""
    spec = importlib.util.find_spec("pyfastcdc")
    for location in (spec.submodule_search_locations or ()) if spec is not None else ():
        compiled = os.path.join(location, "cy")
        if os.path.isdir(compiled) and any(
                name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
                for name in os.listdir(compiled)):
            return True
    return False


if not _compiled_chunker_present():  # pragma: no cover - depends on the installed wheel
    raise ImportError(
        "pyfastcdc's compiled extension (pyfastcdc.cy) is missing; install the binary wheel of pyfastcdc>=0.3"
    )

# The one chunker this build speaks: algorithm, normalization level, gear seed, chunk digest.
CHUNKER_ID = "fastcdc2020-nc1-seed0/xxh3-128"
CHUNK_DIGEST_SIZE = 16
MIN_AVG_SIZE = 256
MAX_AVG_SIZE = 4 << 20
DEFAULT_AVG_SIZE = 8 << 10
# Files up to this size use DEFAULT_AVG_SIZE; bigger ones aim at about TARGET_CHUNKS chunks.
SMALL_FILE_LIMIT = 128 << 20
TARGET_CHUNKS = 16384

PathOrFile = Union[str, bytes, "os.PathLike[str]", BinaryIO]


class DeltaError(ValueError):
    """A delta could not be computed or applied; the caller refetches (see ``delta``)."""


class SignatureMismatch(DeltaError):
    """A signature this end cannot use: another chunker, other parameters, or inconsistent content."""


class ChunkRef(msgspec.Struct, array_like=True, frozen=True):
    """One chunk of a signed file: where it is, how long, and its xxh3_128 digest."""

    offset: int
    length: int
    digest: bytes


class Signature(msgspec.Struct, array_like=True, frozen=True):
    """The chunk list of one file, with the chunker id and parameters it was cut with."""

    chunker_id: str
    avg_size: int
    min_size: int
    max_size: int
    size: int
    lengths: tuple[int, ...]
    digests: bytes  # CHUNK_DIGEST_SIZE bytes per chunk, in file order

    def __len__(self) -> int:
        return len(self.lengths)

    def digest(self, index: int) -> bytes:
        """The digest of chunk ``index``."""
        start = index * CHUNK_DIGEST_SIZE
        return self.digests[start : start + CHUNK_DIGEST_SIZE]

    def offsets(self) -> list[int]:
        """The start offset of every chunk (computed, O(number of chunks))."""
        result = []
        position = 0
        for length in self.lengths:
            result.append(position)
            position += length
        return result

    @property
    def chunks(self) -> list[ChunkRef]:
        """``(offset, length, digest)`` for every chunk (computed, O(number of chunks))."""
        return [
            ChunkRef(offset, length, self.digest(index))
            for index, (offset, length) in enumerate(zip(self.offsets(), self.lengths))
        ]


def average_chunk_size(file_size: int) -> int:
    """The average chunk size for a file of ``file_size`` bytes (a power of two)."""
    if file_size <= SMALL_FILE_LIMIT:
        return DEFAULT_AVG_SIZE
    wanted = -(-file_size // TARGET_CHUNKS)
    size = DEFAULT_AVG_SIZE
    while size < wanted and size < MAX_AVG_SIZE:
        size <<= 1
    return size


def chunker_parameters(avg_size: int) -> tuple[int, int, int]:
    """``(min_size, avg_size, max_size)`` for an average size; ValueError when out of range."""
    if (
        not isinstance(avg_size, int)
        or isinstance(avg_size, bool)
        or avg_size < MIN_AVG_SIZE
        or avg_size > MAX_AVG_SIZE
        or avg_size & (avg_size - 1)
    ):
        raise ValueError(
            f"invalid average chunk size {avg_size!r} (expected a power of two from {MIN_AVG_SIZE} to {MAX_AVG_SIZE})"
        )
    return avg_size // 4, avg_size, avg_size * 4


def _chunker(avg_size: int):
    from pyfastcdc.cy import FastCDC  # loaded on first use (see the import check above)

    minimum, average, maximum = chunker_parameters(avg_size)
    return FastCDC(average, min_size=minimum, max_size=maximum, normalized_chunking=1, seed=0)


@contextmanager
def open_for_reading(file_or_path: PathOrFile) -> Iterator[BinaryIO]:
    """A readable binary file: a path opened (final symlink not followed) and closed, or the object itself."""
    if isinstance(file_or_path, (str, bytes, os.PathLike)):
        fd = os.open(file_or_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb", buffering=0) as handle:
            yield handle
    else:
        yield file_or_path


def iter_chunks(file_or_path: PathOrFile, avg_size: int) -> Iterator[tuple[int, int, memoryview]]:
    """Stream ``(offset, length, data)``; ``data`` is only valid until the next item."""
    chunker = _chunker(avg_size)
    with open_for_reading(file_or_path) as handle:
        for chunk in chunker.cut_stream(handle):
            yield chunk.offset, chunk.length, chunk.data


def signature(file_or_path: PathOrFile, *, avg_size: Optional[int] = None) -> Signature:
    """Cut a file into chunks and digest each one.

    Without ``avg_size`` the size is chosen from the file's size (``average_chunk_size``); a file
    object that cannot be ``fstat``-ed gets ``DEFAULT_AVG_SIZE``.
    """
    with open_for_reading(file_or_path) as handle:
        if avg_size is None:
            try:
                avg_size = average_chunk_size(os.fstat(handle.fileno()).st_size)
            except (AttributeError, OSError, ValueError):
                avg_size = DEFAULT_AVG_SIZE
        minimum, average, maximum = chunker_parameters(avg_size)
        lengths: list[int] = []
        digests = bytearray()
        digest = xxhash.xxh3_128_digest
        size = 0
        for _offset, length, data in iter_chunks(handle, average):
            lengths.append(length)
            digests += digest(data)
            size += length
    return Signature(CHUNKER_ID, average, minimum, maximum, size, tuple(lengths), bytes(digests))


def check_signature(sig: Signature) -> None:
    """Refuse a signature this end would not have cut the same way, or whose fields disagree.

    Raises ``SignatureMismatch`` naming what differs.
    """
    if not isinstance(sig, Signature):
        raise SignatureMismatch(f"expected a Signature, got {type(sig).__name__}")
    if sig.chunker_id != CHUNKER_ID:
        raise SignatureMismatch(
            f"signature made with chunker {sig.chunker_id!r}; this end chunks with {CHUNKER_ID!r}"
        )
    try:
        expected = chunker_parameters(sig.avg_size)
    except ValueError as error:
        raise SignatureMismatch(str(error)) from None
    if (sig.min_size, sig.avg_size, sig.max_size) != expected:
        raise SignatureMismatch(
            f"signature chunk sizes min/avg/max {sig.min_size}/{sig.avg_size}/{sig.max_size} "
            f"differ from this end's {expected[0]}/{expected[1]}/{expected[2]}"
        )
    if len(sig.digests) != CHUNK_DIGEST_SIZE * len(sig.lengths):
        raise SignatureMismatch(
            f"signature has {len(sig.lengths)} chunk lengths but {len(sig.digests)} bytes of digests"
        )
    total = 0
    for index, length in enumerate(sig.lengths):
        if not 0 < length <= sig.max_size:
            raise SignatureMismatch(f"signature chunk {index} has length {length} (maximum {sig.max_size})")
        total += length
    if total != sig.size:
        raise SignatureMismatch(f"signature chunk lengths add up to {total}, not the stated size {sig.size}")


def fingerprint(sig: Signature) -> bytes:
    """A 16-byte name for a signature: a delta names the signature it was computed against."""
    return xxhash.xxh3_128_digest(msgspec.msgpack.encode(sig))
