"""The agent stream handshake: magic bytes, protocol version and features, both ways.

A remote agent talks to the daemon over its stdin/stdout (an SSH channel or a ``docker exec -i``
pipe). A login shell may print a banner or an error on that same stdout, so neither side takes a
byte for a frame before it has seen the peer's hello::

    hello = MAGIC (8 bytes) + version (u16, big-endian) + features (u16 bit set)

Both sides write their hello at once, then read the peer's (no ordering, no deadlock: each is
12 bytes). The features in use are the intersection of both bit sets (``FEATURE_LZ4``: frames
may be lz4-compressed; the daemon asks for it only for remote endpoints). A peer whose first
bytes are not the magic is reported with what it printed (``HandshakeError``); one that speaks
another protocol version is refused naming both versions.

``parse_hello`` and ``describe_garbage`` are pure; ``exchange`` does the I/O with a deadline.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

from .version import PROTOCOL_VERSION

MAGIC = b"\x89MGAGNT\n"
_FIELDS = struct.Struct(">HH")
HELLO_SIZE = len(MAGIC) + _FIELDS.size

FEATURE_LZ4 = 0x0001
KNOWN_FEATURES = FEATURE_LZ4

# How much of a stranger's output is kept for the error message.
GARBAGE_LIMIT = 512


class HandshakeError(ConnectionError):
    """The peer did not complete the handshake; the text says what arrived instead."""


@dataclass(frozen=True)
class Hello:
    version: int
    features: int


def hello(features: int, version: int = PROTOCOL_VERSION) -> bytes:
    return MAGIC + _FIELDS.pack(version, features)


def could_be_hello(data: bytes) -> bool:
    """True while ``data`` is still a prefix of a hello (or starts with a complete magic)."""
    head = data[: len(MAGIC)]
    return MAGIC.startswith(head)


def describe_garbage(data: bytes, limit: int = 200) -> str:
    """What the peer printed, as one quoted line (control bytes escaped, long text cut)."""
    text = data[:limit].decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    more = "..." if len(data) > limit else ""
    return f"'{text}{more}'"


def parse_hello(data: bytes, peer: str = "remote agent") -> Hello:
    """Decode a complete hello; raise ``HandshakeError`` for anything else."""
    if len(data) < HELLO_SIZE or not data.startswith(MAGIC):
        if not data:
            raise HandshakeError(f"{peer} did not answer the handshake: it printed nothing")
        raise HandshakeError(
            f"{peer} did not answer the handshake; it printed: {describe_garbage(data)}")
    version, features = _FIELDS.unpack_from(data, len(MAGIC))
    if version != PROTOCOL_VERSION:
        raise HandshakeError(
            f"{peer} speaks protocol version {version}, this side speaks {PROTOCOL_VERSION}")
    return Hello(version, features)


async def _read_more(reader, limit: int, wait: float) -> bytes:
    """Whatever arrives within ``wait`` seconds, up to ``limit`` bytes or the end of stream."""
    chunks: list[bytes] = []

    async def collect():
        size = 0
        while size < limit:
            chunk = await reader.read(limit - size)
            if not chunk:
                return
            chunks.append(chunk)
            size += len(chunk)

    try:
        await asyncio.wait_for(collect(), wait)
    except asyncio.TimeoutError:
        pass
    return b"".join(chunks)


def agreed_features(mine: int, theirs: int) -> int:
    return mine & theirs & KNOWN_FEATURES


async def read_hello(reader, *, peer: str = "remote agent", garbage_wait: float = 0.3) -> Hello:
    """Read the peer's hello from ``reader`` (``read(n)``; ``b""`` at end of stream).

    When the first bytes are not the magic, keep reading for up to ``garbage_wait`` seconds
    (or ``GARBAGE_LIMIT`` bytes, or end of stream) so the error can quote what was printed.
    """
    data = b""
    while len(data) < HELLO_SIZE:
        chunk = await reader.read(HELLO_SIZE - len(data))
        if not chunk:
            return parse_hello(data, peer)
        data += chunk
        if not could_be_hello(data):
            data += await _read_more(reader, GARBAGE_LIMIT - len(data), garbage_wait)
            return parse_hello(data, peer)
    return parse_hello(data, peer)


async def exchange(reader, writer, features: int, *, timeout: float,
                   peer: str = "remote agent") -> int:
    """Send our hello, read the peer's; returns the agreed features.

    Raises ``HandshakeError`` (garbage, end of stream, other version) or ``TimeoutError`` naming
    the deadline when the peer says nothing in time.
    """
    writer.write(hello(features))

    async def both():
        await writer.drain()
        return await read_hello(reader, peer=peer)

    try:
        theirs = await asyncio.wait_for(both(), timeout)
    except asyncio.TimeoutError:
        raise HandshakeError(f"{peer} did not answer the handshake within {timeout:g} s") from None
    return agreed_features(features, theirs.features)
