"""Delta transfer of large files: what the sender streams, and how the receiver rebuilds the file.

The flow (the staging pipeline drives it; nothing here touches sockets):

1. The receiver signs the file it already has at that path: ``chunking.signature(base)``.
2. The sender cuts its new file with the signature's chunker and parameters and streams
   ``delta(sig, new_file)``: a ``Start`` naming the signature (and the output offset it starts
   at), then ``Copy`` operations (runs of the receiver's own chunks, by index) and ``Literal``
   blocks (new bytes, at most ``MAX_LITERAL`` each, each with its own xxh3_128 digest).
3. The receiver runs ``apply_delta(base, ops, out, signature=sig, expected_digest=...,
   hash_algorithm=...)``: every copied chunk is re-read and checked against the signature, every
   literal against its digest, before a byte is written; at the end the whole file is checked
   against the session digest.

Resuming: ``apply_delta`` only ever writes verified bytes, so after an interruption the staged
partial file is a correct prefix of the target. ``resume_point(partial)`` is its length; the
receiver sends it with the signature, and ``delta(sig, new_file, resume_from=n)`` (or
``skip_prefix``) sends only what lies beyond it. ``apply_delta`` then appends after the prefix and
still verifies the digest of the whole file. A partial file belongs to one target digest: if the
expected digest changes, discard the partial file and start from 0.

Memory: both sides are streaming. The sender holds one literal block plus the chunker's buffer
(two maximum-size chunks); the receiver holds one chunk or one literal at a time.

Failure rules (all ``DeltaError``, a ``ValueError``; the caller refetches):
- ``SignatureMismatch`` (from chunking): the signature was cut with another chunker or other
  parameters, is inconsistent, or the delta names a different signature / a different offset.
- ``MalformedDelta``: no ``Start`` first, a second ``Start``, an index out of range, a literal
  bigger than ``MAX_LITERAL``, an unknown operation.
- ``CorruptLiteral``: a literal's bytes do not match its digest.
- ``CorruptBaseChunk``: a chunk of the receiver's base file no longer matches its signature (the
  file changed or is damaged since it was signed).
- ``DigestMismatch``: the rebuilt file is not the expected content (discard it entirely).
On the first three (and ``CorruptBaseChunk``) nothing unverified was written: the out file holds a
correct prefix, ``resume_point`` of it is valid. OSError propagates.

The operations are ``msgspec`` structs (tagged msgpack arrays) ready to ride in wire messages.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterable, Iterator, Union

import msgspec
import xxhash

from .chunking import (
    CHUNK_DIGEST_SIZE,
    DeltaError,
    PathOrFile,
    Signature,
    SignatureMismatch,
    check_signature,
    fingerprint,
    iter_chunks,
    open_for_reading,
)
from .hashing import new_hasher
from .settings import HashAlgorithm

__all__ = [
    "MAX_LITERAL",
    "Start",
    "Copy",
    "Literal",
    "Operation",
    "DeltaError",
    "SignatureMismatch",
    "MalformedDelta",
    "CorruptLiteral",
    "CorruptBaseChunk",
    "DigestMismatch",
    "delta",
    "skip_prefix",
    "apply_delta",
    "resume_point",
    "literal_bytes",
    "Rebuilder",
    "span_of",
]

# The largest literal block a sender emits and a receiver accepts.
MAX_LITERAL = 256 << 10
# A copy run is read from the base in groups of chunks of about this many bytes.
COPY_BATCH = 1 << 20
# The most output one Copy operation stands for: the sender yields at least that often, so a
# caller can bound the work behind one message even on a huge unchanged file.
MAX_COPY_RUN = 64 << 20


class Start(msgspec.Struct, tag="start", array_like=True, frozen=True):
    """First operation: the fingerprint of the signature used, and the output offset it starts at."""

    base: bytes
    offset: int = 0


class Copy(msgspec.Struct, tag="copy", array_like=True, frozen=True):
    """Copy ``count`` consecutive base chunks from ``index``, leaving out the first ``skip`` bytes."""

    index: int
    count: int = 1
    skip: int = 0


class Literal(msgspec.Struct, tag="literal", array_like=True, frozen=True):
    """New bytes (at most ``MAX_LITERAL``) with their xxh3_128 digest."""

    data: bytes
    digest: bytes


Operation = Union[Start, Copy, Literal]


class MalformedDelta(DeltaError):
    """The operation stream breaks the protocol."""


class CorruptLiteral(DeltaError):
    """A literal block does not match its digest."""


class CorruptBaseChunk(DeltaError):
    """A chunk of the base file no longer matches its signature."""


class DigestMismatch(DeltaError):
    """The rebuilt file does not have the expected digest."""


def _literal(data: bytes) -> Literal:
    return Literal(data, xxhash.xxh3_128_digest(data))


def _body(sig: Signature, source: PathOrFile, max_literal: int) -> Iterator[Union[Copy, Literal]]:
    """Copy/Literal operations rebuilding ``source`` from the chunks named in ``sig``."""
    first: dict[bytes, int] = {}
    digests = sig.digests
    for index in range(len(sig.lengths)):
        key = digests[index * CHUNK_DIGEST_SIZE : (index + 1) * CHUNK_DIGEST_SIZE]
        first.setdefault(key, index)
    chunk_count = len(sig.lengths)
    digest = xxhash.xxh3_128_digest
    pending = bytearray()
    run_index = -1
    run_count = 0
    run_bytes = 0
    for _offset, length, data in iter_chunks(source, sig.avg_size):
        key = digest(data)
        if run_count:
            following = run_index + run_count
            if following < chunk_count and sig.digest(following) == key:
                if run_bytes + length > MAX_COPY_RUN:  # keep every operation's work bounded
                    yield Copy(run_index, run_count)
                    run_index, run_count, run_bytes = following, 1, length
                else:
                    run_count += 1
                    run_bytes += length
                continue
        found = first.get(key)
        if found is None:
            if run_count:
                yield Copy(run_index, run_count)
                run_count = 0
            pending += data
            while len(pending) >= max_literal:
                yield _literal(bytes(pending[:max_literal]))
                del pending[:max_literal]
            continue
        if run_count:
            yield Copy(run_index, run_count)
        if pending:
            yield _literal(bytes(pending))
            pending.clear()
        run_index, run_count, run_bytes = found, 1, length
    if run_count:
        yield Copy(run_index, run_count)
    if pending:
        yield _literal(bytes(pending))


def skip_prefix(
    operations: Iterable[Union[Copy, Literal]], sig: Signature, done: int
) -> Iterator[Union[Copy, Literal]]:
    """The operations that remain once the first ``done`` output bytes exist.

    Works on the body of a delta (no ``Start``). Operations entirely inside the prefix are
    dropped; the one straddling it is trimmed (a literal's tail with a fresh digest, a copy run
    starting later with ``skip``). ``done`` beyond the end yields nothing.
    """
    if done < 0:
        raise ValueError(f"invalid resume offset {done} (expected >= 0)")
    position = 0
    lengths = sig.lengths
    for operation in operations:
        if position >= done:
            yield operation
            continue
        if isinstance(operation, Literal):
            size = len(operation.data)
            if position + size > done:
                yield _literal(operation.data[done - position :])
            position += size
            continue
        if not isinstance(operation, Copy):
            raise MalformedDelta(f"unexpected operation {type(operation).__name__} in a delta body")
        index, count, skip = operation.index, operation.count, operation.skip
        while count and position + lengths[index] - skip <= done:
            position += lengths[index] - skip
            index += 1
            count -= 1
            skip = 0
        if count:
            skip += done - position
            position = done
            yield Copy(index, count, skip)
            position += sum(lengths[index : index + count]) - skip


def delta(
    sig: Signature, source: PathOrFile, *, resume_from: int = 0, max_literal: int = MAX_LITERAL
) -> Iterator[Operation]:
    """Stream the operations that turn the signed base into ``source``.

    ``source`` is a path or a readable binary file (read once, from its current position). The
    signature and arguments are checked when ``delta`` is called (``SignatureMismatch``,
    ``ValueError``); the returned iterator yields ``Start(fingerprint, resume_from)``, then the
    operations for the output from ``resume_from`` on, reading ``source`` as it goes.
    """
    check_signature(sig)
    if not 0 < max_literal <= MAX_LITERAL:
        raise ValueError(f"invalid literal size {max_literal} (expected 1 to {MAX_LITERAL})")
    if resume_from < 0:
        raise ValueError(f"invalid resume offset {resume_from} (expected >= 0)")
    return _stream(sig, source, resume_from, max_literal)


def _stream(sig: Signature, source: PathOrFile, resume_from: int, max_literal: int) -> Iterator[Operation]:
    yield Start(fingerprint(sig), resume_from)
    body = _body(sig, source, max_literal)
    yield from (skip_prefix(body, sig, resume_from) if resume_from else body)


def literal_bytes(operations: Iterable[Operation]) -> int:
    """How many literal bytes a stream of operations carries."""
    return sum(len(op.data) for op in operations if isinstance(op, Literal))


def resume_point(partial: PathOrFile) -> int:
    """Length of the verified prefix in a partially staged file (0 if it does not exist)."""
    if isinstance(partial, (str, bytes, os.PathLike)):
        try:
            return os.stat(partial, follow_symlinks=False).st_size
        except FileNotFoundError:
            return 0
    return os.fstat(partial.fileno()).st_size


@contextmanager
def _open_output(out: PathOrFile) -> Iterator[BinaryIO]:
    if isinstance(out, (str, bytes, os.PathLike)):
        fd = os.open(out, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "r+b", buffering=0) as handle:
            yield handle
    else:
        yield out


def _reader(handle: BinaryIO):
    """``read_at(offset, length)`` for a file: ``os.pread`` when it has a descriptor, else seek + read."""
    try:
        fd = handle.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is not None:
        return lambda offset, length: os.pread(fd, length, offset)

    def read_at(offset: int, length: int) -> bytes:
        handle.seek(offset)
        return handle.read(length)

    return read_at


def _hash_prefix(handle: BinaryIO, length: int, hasher) -> None:
    handle.seek(0)
    remaining = length
    while remaining:
        block = handle.read(min(remaining, 1 << 20))
        if not block:
            raise DeltaError(f"the staged file is shorter than the resume offset {length}")
        hasher.update(block)
        remaining -= len(block)


def span_of(operation: Operation, lengths: tuple[int, ...], offsets: list[int]) -> int:
    """How many output bytes ``operation`` produces, given the signature's chunk ``lengths`` and
    ``offsets`` (``Signature.offsets()``); 0 for a ``Start`` or a copy out of range."""
    if isinstance(operation, Literal):
        return len(operation.data)
    if isinstance(operation, Copy):
        last = operation.index + operation.count - 1
        if operation.index < 0 or operation.count < 1 or last >= len(lengths):
            return 0
        return offsets[last] + lengths[last] - offsets[operation.index] - operation.skip
    return 0


class Rebuilder:
    """The receiving half of a delta, one operation at a time (``apply_delta`` and the staging
    pipeline, where operations arrive across many messages, both use it).

    ``read_at(offset, length)`` reads the signed base; ``emit(data)`` receives every verified
    output byte in order (the caller writes and hashes it); ``position`` is the output offset the
    first operation starts at (a resume point). ``feed(op)`` takes ``Copy`` and ``Literal``
    operations (a ``Start`` is checked by the caller, see ``check_start``); each copied chunk is
    re-read and checked against the signature and each literal against its digest *before* it is
    emitted, so whatever was emitted is correct even when ``feed`` raises (``MalformedDelta``,
    ``CorruptLiteral``, ``CorruptBaseChunk``). ``position`` is the output offset after what was
    emitted. The whole-file digest is the caller's check.
    """

    def __init__(self, read_at: Callable[[int, int], bytes], signature: Signature,
                 emit: Callable[[bytes], None], position: int = 0):
        check_signature(signature)
        self.read_at = read_at
        self.signature = signature
        self.emit = emit
        self.position = position
        self._offsets = signature.offsets()

    def check_start(self, start: "Start") -> None:
        """Refuse a ``Start`` naming another signature or another output offset."""
        if not isinstance(start, Start):
            raise MalformedDelta(f"a delta must begin with Start, got {type(start).__name__}")
        if start.base != fingerprint(self.signature):
            raise SignatureMismatch("the delta was computed against another signature than this base's")
        if start.offset != self.position:
            raise SignatureMismatch(
                f"the delta starts at byte {start.offset} but the staged file holds {self.position} bytes"
            )

    def feed(self, operation: Union["Copy", "Literal"]) -> None:
        signature = self.signature
        lengths = signature.lengths
        digest = xxhash.xxh3_128_digest
        if isinstance(operation, Literal):
            data = operation.data
            if len(data) > MAX_LITERAL:
                raise MalformedDelta(f"literal of {len(data)} bytes at {self.position} exceeds {MAX_LITERAL}")
            if digest(data) != operation.digest:
                raise CorruptLiteral(f"literal of {len(data)} bytes at output offset {self.position} is corrupted")
            self.emit(data)
            self.position += len(data)
        elif isinstance(operation, Copy):
            index, count, skip = operation.index, operation.count, operation.skip
            chunk_count = len(lengths)
            if index < 0 or count < 1 or index + count > chunk_count:
                raise MalformedDelta(f"copy of chunks {index}..{index + count - 1} but the base has {chunk_count}")
            if not 0 <= skip < lengths[index]:
                raise MalformedDelta(f"copy skips {skip} bytes of a {lengths[index]}-byte chunk")
            offsets = self._offsets
            end = index + count
            while index < end:
                # Read a group of consecutive chunks (about COPY_BATCH bytes) in one call,
                # verify each chunk, emit the group in one call.
                stop = index + 1
                span = lengths[index]
                while stop < end and span < COPY_BATCH:
                    span += lengths[stop]
                    stop += 1
                block = memoryview(self.read_at(offsets[index], span))
                cursor = 0
                for current in range(index, stop):
                    length = lengths[current]
                    piece = block[cursor : cursor + length]
                    if len(piece) != length or digest(piece) != signature.digest(current):
                        raise CorruptBaseChunk(
                            f"base chunk {current} ({length} bytes at {offsets[current]}) no longer "
                            "matches its signature: the base file changed or is damaged"
                        )
                    cursor += length
                piece = block[skip:] if skip else block
                skip = 0
                self.emit(piece)
                self.position += len(piece)
                index = stop
        elif isinstance(operation, Start):
            raise MalformedDelta("a second Start inside a delta")
        else:
            raise MalformedDelta(f"unknown delta operation {type(operation).__name__}")


def apply_delta(
    base: PathOrFile,
    operations: Iterable[Operation],
    out: PathOrFile,
    *,
    signature: Signature,
    expected_digest: bytes,
    hash_algorithm: HashAlgorithm,
) -> int:
    """Rebuild the target into ``out`` from ``base`` (the signed file) and ``operations``.

    ``out`` is a path (created 0600 if missing, never following a final symlink) or a binary file
    open for reading and writing. With ``Start.offset == 0`` it is truncated; with a resume offset
    it must already hold that many bytes (they are hashed, kept, and the rest is appended).
    Returns the size of the rebuilt file. Raises the ``DeltaError`` family described in the module
    docstring; nothing unverified is ever written.
    """
    check_signature(signature)
    expected_base = fingerprint(signature)
    hasher = new_hasher(HashAlgorithm(hash_algorithm))
    iterator = iter(operations)
    first = next(iterator, None)
    if not isinstance(first, Start):
        raise MalformedDelta(f"a delta must begin with Start, got {type(first).__name__}")
    if first.base != expected_base:
        raise SignatureMismatch("the delta was computed against another signature than this base's")
    with open_for_reading(base) as source, _open_output(out) as target:
        if first.offset:
            have = os.fstat(target.fileno()).st_size
            if have < first.offset:
                raise SignatureMismatch(
                    f"the delta resumes at byte {first.offset} but the staged file holds {have} bytes"
                )
            _hash_prefix(target, first.offset, hasher)
        target.truncate(first.offset)
        target.seek(first.offset)

        def emit(data) -> None:
            target.write(data)
            hasher.update(data)

        rebuilder = Rebuilder(_reader(source), signature, emit, first.offset)
        for operation in iterator:
            rebuilder.feed(operation)
        position = rebuilder.position
        if hasattr(target, "flush"):
            target.flush()
    if hasher.digest() != expected_digest:
        raise DigestMismatch(
            f"the rebuilt file ({position} bytes) does not match the expected {HashAlgorithm(hash_algorithm).value} digest"
        )
    return position
