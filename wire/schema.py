"""The one versioned message schema: every message type of every domain, and the envelope.

A frame on any socket or stream is one msgpack array::

    [protocol_version, request_id, reply_to, [message_type, field, ...]]

``request_id`` is non-zero on a request that expects a reply; ``reply_to`` is the id of the
request a reply answers (0 otherwise). Decoding checks the size, the msgpack syntax, the message
type, every field's type and the protocol version in one step (see ``codec``).
"""

from typing import Union

import msgspec

from .messages import actor, agent, base, control, endpoint, forward, sync

ALL_MESSAGES: tuple = (
    base.MESSAGES + actor.MESSAGES + control.MESSAGES + sync.MESSAGES + endpoint.MESSAGES
    + forward.MESSAGES + agent.MESSAGES
)

_names = [m.__name__ for m in ALL_MESSAGES]
_duplicates = sorted({n for n in _names if _names.count(n) > 1})
if _duplicates:
    raise RuntimeError(f"duplicate message type names in wire schema: {_duplicates}")

AnyMessage = Union[ALL_MESSAGES]  # type: ignore[valid-type]


class Envelope(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    version: int
    id: int
    reply_to: int
    body: AnyMessage  # type: ignore[valid-type]


MESSAGE_TYPES = {m.__name__: m for m in ALL_MESSAGES}
