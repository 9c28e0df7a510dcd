"""msgpack codec for protocol frames, validating on decode.

Only this module (and the socket helpers beside it) turn messages into bytes and back.
"""

from __future__ import annotations

import msgspec

from .errors import ProtocolError
from .schema import Envelope
from .version import MAX_FRAME_SIZE, PROTOCOL_VERSION

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Envelope)


def encode(body, *, id: int = 0, reply_to: int = 0) -> bytes:
    """Encode one message into a frame."""
    return _encoder.encode(Envelope(PROTOCOL_VERSION, id, reply_to, body))


def decode(frame, *, max_size: int = MAX_FRAME_SIZE) -> Envelope:
    """Decode and validate one frame; raise ``ProtocolError`` naming what was wrong."""
    size = len(frame)
    if size > max_size:
        raise ProtocolError(f"oversized frame: {size} bytes (limit {max_size})")
    if size == 0:
        raise ProtocolError("empty frame")
    try:
        envelope = _decoder.decode(frame)
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
