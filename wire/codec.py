"""msgpack codec for protocol frames, validating on decode.

Only this module (and the socket helpers beside it) turn messages into bytes and back. The
implementation is ``wire.framing.FrameCodec``, here over the whole schema (``wire.schema``):

- ``encode(body, *, id=0, reply_to=0) -> bytes``: one message into a frame;
- ``decode(frame, *, max_size=MAX_FRAME_SIZE) -> Envelope``: decode and validate one frame;
  raise ``ProtocolError`` naming what was wrong.
"""

from __future__ import annotations

from .framing import FrameCodec, check_size
from .schema import Envelope

_codec = FrameCodec(Envelope)
encode = _codec.encode
decode = _codec.decode


# ------------------------------------------------------------------ header-only receive (relays)
#
# A relaying actor (``agent.remote_endpoint_actor`` for ``StageChunks``) need not decode a
# message it only passes on: ``peek`` reads and checks the envelope (size, msgpack syntax of the
# whole frame, protocol version, a known message type) and returns the body's encoded bytes
# untouched; ``RawFrame.head`` gives the envelope bytes to put in front of them for the next hop
# (another request id). The body's fields are validated where the message is used: the final
# receiver decodes the frame with ``decode`` as any other (the rule "every message is validated
# on receipt" holds at the receiver; the relay vouches only for the envelope).

from dataclasses import dataclass  # noqa: E402

import msgspec  # noqa: E402

from .errors import ProtocolError  # noqa: E402
from .schema import MESSAGE_TYPES  # noqa: E402
from .version import MAX_FRAME_SIZE, PROTOCOL_VERSION  # noqa: E402


class _Header(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    version: int
    id: int
    reply_to: int
    body: msgspec.Raw


_header_decoder = msgspec.msgpack.Decoder(_Header)
_int_encoder = msgspec.msgpack.Encoder()
_ENVELOPE_ARRAY = b"\x94"  # msgpack fixarray of 4: [version, id, reply_to, body]


@dataclass(frozen=True)
class RawFrame:
    """A frame whose body was not decoded (see ``peek``): ``type_name`` (a known message type),
    ``id``/``reply_to`` of its envelope, ``body`` (a view of the encoded body inside ``frame``)."""

    type_name: str
    id: int
    reply_to: int
    frame: bytes
    body_offset: int

    @property
    def body(self) -> memoryview:
        return memoryview(self.frame)[self.body_offset:]

    def head(self, *, id: int = 0, reply_to: int = 0) -> bytes:
        """Envelope bytes that, followed by ``body``, make this message a frame with ``id`` and
        ``reply_to``."""
        return b"".join((_ENVELOPE_ARRAY, _int_encoder.encode(PROTOCOL_VERSION),
                         _int_encoder.encode(id), _int_encoder.encode(reply_to)))

    def reframed(self, *, id: int = 0, reply_to: int = 0) -> bytes:
        """The whole frame with another ``id``/``reply_to`` (a copy)."""
        return self.head(id=id, reply_to=reply_to) + self.body


def peek(frame, *, max_size: int = MAX_FRAME_SIZE) -> RawFrame:
    """Read a frame's envelope and message type without decoding the body's fields; raise
    ``ProtocolError`` naming what was wrong (size, msgpack syntax anywhere in the frame, shape of
    the envelope, protocol version, an unknown message type)."""
    frame = bytes(frame)
    check_size(frame, max_size)
    size = len(frame)
    try:
        header = _header_decoder.decode(frame)
    except msgspec.ValidationError as error:
        raise ProtocolError(f"invalid message: {error}") from None
    except msgspec.DecodeError as error:
        raise ProtocolError(f"malformed frame: {error}") from None
    if header.version != PROTOCOL_VERSION:
        raise ProtocolError(f"protocol version mismatch: peer speaks {header.version!r}, "
                            f"this side speaks {PROTOCOL_VERSION}")
    body = memoryview(header.body)
    name = _type_name(body)
    if name not in MESSAGE_TYPES:
        raise ProtocolError(f"invalid message: unknown message type {name!r}"
                            if name is not None else
                            "invalid message: the body is not a [type, field, ...] array")
    return RawFrame(name, header.id, header.reply_to, frame, size - len(body))


def message_name(body) -> str:
    """A message's name on the wire: its struct's tag (a shallow stand-in, e.g. the
    transitioner's ``ShallowTransition``, carries the tag of what it encodes as), else its class
    name (for texts: timeouts, refusals)."""
    tag = getattr(getattr(type(body), "__struct_config__", None), "tag", None)
    return tag if isinstance(tag, str) else type(body).__name__


def raw_field(raw: RawFrame, message_type: type, name: str):
    """The encoded value (``msgspec.Raw``) of field ``name`` of a message received header-only
    (``peek``), without decoding the other fields; None when the field is omitted (it then has
    its default). ``message_type`` is the array-like message struct ``raw`` holds (``ValueError``
    if ``raw`` is another type); ``ProtocolError`` if the body is not an array."""
    tag = message_type.__struct_config__.tag
    if raw.type_name != tag:
        raise ValueError(f"{raw.type_name} is not a {tag}")
    position = 1 + message_type.__struct_fields__.index(name)
    try:
        fields = _fields_decoder.decode(raw.body)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise ProtocolError(f"invalid message: {error}") from None
    return fields[position] if position < len(fields) else None


_fields_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])


def peek_id(frame) -> int:
    """The request id of a frame that does not decode, if its envelope can be read (0 if not):
    lets a receiver refuse that one request instead of failing every request in flight."""
    try:
        return _header_decoder.decode(bytes(frame)).id
    except (msgspec.DecodeError, TypeError):
        return 0


def _type_name(body: memoryview):
    """The tag of a ``[type name, field, ...]`` body, or None if it is not one."""
    if len(body) < 2:
        return None
    first = body[0]
    if 0x90 <= first <= 0x9f:
        at = 1
    elif first == 0xdc:
        at = 3
    elif first == 0xdd:
        at = 5
    else:
        return None
    if at >= len(body):
        return None
    first = body[at]
    if 0xa0 <= first <= 0xbf:
        length, at = first & 0x1f, at + 1
    elif first == 0xd9 and at + 1 < len(body):
        length, at = body[at + 1], at + 2
    else:
        return None  # message type names are short (< 256 bytes)
    name = bytes(body[at:at + length])
    if len(name) != length:
        return None
    try:
        return name.decode()
    except UnicodeDecodeError:
        return None
