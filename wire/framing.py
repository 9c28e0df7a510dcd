"""The control socket's framing, shared by the asyncio server (``wire.stream``) and the blocking
client (``wire.stream_client``): a 4-byte big-endian length, then one codec frame.

Pure functions only; this module must stay free of asyncio (the CLI imports it).
"""

from __future__ import annotations

import struct

from .errors import ProtocolError

HEADER = struct.Struct(">I")


def pack(frame: bytes) -> bytes:
    """``frame`` with its length prefix."""
    return HEADER.pack(len(frame)) + frame


def frame_size(header: bytes, max_frame: int) -> int:
    """The length a ``HEADER.size``-byte prefix announces; ``ProtocolError`` above ``max_frame``."""
    (size,) = HEADER.unpack(header)
    if size > max_frame:
        raise ProtocolError(f"oversized frame: {size} bytes (limit {max_frame})")
    return size
