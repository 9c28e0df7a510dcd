"""Base class of every message, and the messages every peer understands."""

import msgspec


class Message(msgspec.Struct, array_like=True, tag=True, forbid_unknown_fields=True):
    """A protocol message: encoded as a msgpack array ``[type name, field, field, ...]``."""


class Ping(Message):
    """Heartbeat probe; answered with ``Pong`` carrying the same nonce."""

    nonce: int


class Pong(Message):
    nonce: int


class Ok(Message):
    """Generic successful reply with no payload."""


class ErrorReply(Message):
    """Reply to a request that failed. ``code`` is a short token, ``message`` a one-line text.

    Codes in use: ``protocol`` (the request was malformed), ``unknown-request`` (the receiver
    does not handle that message type), ``failed`` (the handler raised), ``not-found``,
    ``invalid-argument``, ``unavailable``, ``version-mismatch``.
    """

    code: str
    message: str


MESSAGES = (Ping, Pong, Ok, ErrorReply)
