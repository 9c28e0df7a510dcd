"""Content digests for the session's hash algorithm (xxh128, sha1, sha256).

One place decides how bytes become a digest, so the scanner, the digest cache, the staging store
and the transition all agree. Digests are raw bytes (16 bytes for xxh128, 20 for sha1, 32 for
sha256).

Contract:
- ``new_hasher(algorithm)`` returns an object with ``update(bytes)`` and ``digest() -> bytes``.
- ``digest_bytes(data, algorithm)`` hashes a buffer in one call; ``one_shot(algorithm)`` is that
  function for one algorithm.
- ``hash_fd(fd, algorithm, expected_size)`` reads an open file from its current offset and returns
  ``(digest, bytes_read)``; it reads at most ``expected_size + 1`` bytes when the size is known so a
  caller can tell "the file grew while I read it" from ``bytes_read != expected_size``. OSError from
  ``read`` propagates.
- ``hash_path`` opens a path (never following a final symbolic link) and hashes it.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import xxhash

from .settings import HashAlgorithm

# Files up to this size are read in one ``read`` call; bigger ones stream in blocks of this size.
BLOCK_SIZE = 1 << 20

# hashlib is imported on first use of sha1/sha256, not with this module: importing it loads
# OpenSSL's libcrypto (~3.5 MB resident), which a session hashing with xxh128 never needs
# (docs/architecture.md, memory of one 100k-file session).


def _sha1(data: bytes = b""):
    import hashlib

    return hashlib.sha1(data)


def _sha256(data: bytes = b""):
    import hashlib

    return hashlib.sha256(data)


_ONE_SHOT: dict[HashAlgorithm, Callable[[bytes], bytes]] = {
    HashAlgorithm.XXH128: xxhash.xxh3_128_digest,
    HashAlgorithm.SHA1: lambda data: _sha1(data).digest(),
    HashAlgorithm.SHA256: lambda data: _sha256(data).digest(),
}

_FACTORIES: dict[HashAlgorithm, Callable[[], object]] = {
    HashAlgorithm.XXH128: xxhash.xxh3_128,
    HashAlgorithm.SHA1: _sha1,
    HashAlgorithm.SHA256: _sha256,
}

DIGEST_SIZES = {HashAlgorithm.XXH128: 16, HashAlgorithm.SHA1: 20, HashAlgorithm.SHA256: 32}


def new_hasher(algorithm: HashAlgorithm):
    """A fresh incremental hasher for ``algorithm``."""
    return _FACTORIES[HashAlgorithm(algorithm)]()


def one_shot(algorithm: HashAlgorithm) -> Callable[[bytes], bytes]:
    """The function ``data -> digest`` of ``algorithm`` (``digest_bytes`` without its lookup, for
    callers hashing many small buffers)."""
    return _ONE_SHOT[HashAlgorithm(algorithm)]


def digest_bytes(data: bytes, algorithm: HashAlgorithm) -> bytes:
    """The digest of ``data``."""
    return _ONE_SHOT[HashAlgorithm(algorithm)](data)


def hash_fd(fd: int, algorithm: HashAlgorithm, expected_size: Optional[int] = None) -> tuple[bytes, int]:
    """Hash the rest of an open file: ``(digest, bytes_read)``.

    With ``expected_size`` the read stops after ``expected_size + 1`` bytes: a file that grew is
    detected without reading it all.
    """
    if expected_size is not None and expected_size < BLOCK_SIZE:
        data = os.read(fd, expected_size + 1)
        if len(data) >= expected_size:
            # Small files (the common case) take one read; a further read would only confirm EOF.
            return _ONE_SHOT[algorithm](data), len(data)
        hasher = new_hasher(algorithm)
        hasher.update(data)
        total = len(data)
    else:
        hasher = new_hasher(algorithm)
        total = 0
    limit = None if expected_size is None else expected_size + 1
    while True:
        want = BLOCK_SIZE if limit is None else min(BLOCK_SIZE, limit - total)
        if want <= 0:
            break
        block = os.read(fd, want)
        if not block:
            break
        hasher.update(block)
        total += len(block)
    return hasher.digest(), total


def hash_path(path: str, algorithm: HashAlgorithm, *, dir_fd: Optional[int] = None) -> tuple[bytes, int]:
    """Open ``path`` (relative to ``dir_fd`` if given, final symlink not followed) and hash it all."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        return hash_fd(fd, algorithm)
    finally:
        os.close(fd)
