"""Errors raised by the wire layer."""


class ProtocolError(ValueError):
    """A peer sent bytes that are not a valid message of this protocol version.

    The text says what was wrong (malformed msgpack, unknown message type, missing field,
    oversized frame, version mismatch) so that it can be logged or shown as it is.
    """


class RequestTimeout(TimeoutError):
    """A request got no reply before its deadline."""


class RemoteError(RuntimeError):
    """The peer answered a request with an error reply.

    ``code`` is a short machine-readable token (see ``wire.messages.base.ErrorReply``).
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
