"""Framing and frame codec shared by every wire user; pure functions, no asyncio (the CLI imports
this module).

- ``pack`` / ``frame_size``: the control socket's length prefix (a 4-byte big-endian length, then
  one frame), used by the asyncio server (``wire.stream``) and the blocking client
  (``wire.stream_client``).
- ``FrameCodec(envelope_type)``: encode/decode of frames ``[version, id, reply_to, body]`` for an
  envelope whose ``body`` is a tagged union of messages. ``wire.codec`` is the one over the whole
  schema; the CLI's client also builds one over the control subset (``wire.control_schema``)
  because it imports far less. ``decode`` validates in one step and raises ``ProtocolError``
  naming what was wrong (size, msgpack syntax, message type, field types, protocol version).
"""

from __future__ import annotations

import struct

import msgspec

from .errors import ProtocolError
from .version import MAX_FRAME_SIZE, PROTOCOL_VERSION

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


class FrameCodec:
    """Frames of ``envelope_type`` (a msgspec array-like struct: version, id, reply_to, body)."""

    def __init__(self, envelope_type: type):
        self._envelope = envelope_type
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(envelope_type)

    def encode(self, body, *, id: int = 0, reply_to: int = 0) -> bytes:
        """Encode one message into a frame."""
        return self._encoder.encode(self._envelope(PROTOCOL_VERSION, id, reply_to, body))

    def decode(self, frame, *, max_size: int = MAX_FRAME_SIZE):
        """Decode and validate one frame; raise ``ProtocolError`` naming what was wrong."""
        check_size(frame, max_size)
        try:
            envelope = self._decoder.decode(frame)
        except msgspec.ValidationError as error:
            # Report the version first if that is what differs: it explains everything else.
            version = _peek_version(frame)
            if version is not None and version != PROTOCOL_VERSION:
                raise ProtocolError(_version_text(version)) from None
            raise ProtocolError(f"invalid message: {error}") from None
        except msgspec.DecodeError as error:
            raise ProtocolError(f"malformed frame: {error}") from None
        if envelope.version != PROTOCOL_VERSION:
            raise ProtocolError(_version_text(envelope.version))
        return envelope


def check_size(frame, max_size: int) -> None:
    """``ProtocolError`` for an empty frame or one above ``max_size`` bytes."""
    size = len(frame)
    if size > max_size:
        raise ProtocolError(f"oversized frame: {size} bytes (limit {max_size})")
    if size == 0:
        raise ProtocolError("empty frame")


def _version_text(version) -> str:
    return f"protocol version mismatch: peer speaks {version!r}, this side speaks {PROTOCOL_VERSION}"


def _peek_version(frame):
    try:
        value = msgspec.msgpack.decode(frame)
    except msgspec.DecodeError:
        return None
    if isinstance(value, list) and value and isinstance(value[0], int):
        return value[0]
    return None
