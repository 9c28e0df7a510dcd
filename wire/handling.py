"""Turning a request into its reply, the same way on every socket.

A handler is ``async def handler(body) -> reply body | None``. It signals refusal with
``NotHandled`` (the receiver does not handle that message type: ``unknown-request``) or
``Refused(code, message)`` (a clear, expected failure such as ``not-found``). Any other exception
becomes ``ErrorReply("failed", ...)`` and is logged with its traceback: a request never crashes
the receiver and the requester always gets an answer. ``None`` is answered with ``Ok``.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from .messages.base import ErrorReply, Ok


class NotHandled(Exception):
    """Raised by a handler for a well-formed message it does not handle."""


class Refused(Exception):
    """Raised by a handler to answer with ``ErrorReply(code, message)``."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


Handler = Callable[[object], Awaitable[object]]


async def answer(handler: Handler, body, log) -> object:
    """Run ``handler(body)`` and return the reply body (never raises, except cancellation)."""
    try:
        reply = await handler(body)
    except NotHandled:
        log.warning("unhandled request", message_type=type(body).__name__)
        return ErrorReply("unknown-request", f"{type(body).__name__} is not handled here")
    except Refused as refusal:
        return ErrorReply(refusal.code, refusal.message)
    except Exception as error:  # noqa: BLE001 - the contract: every request gets an answer
        log.exception("request handler failed", message_type=type(body).__name__)
        return ErrorReply("failed", f"{type(error).__name__}: {error}")
    return Ok() if reply is None else reply
