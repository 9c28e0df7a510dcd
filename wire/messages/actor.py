"""Messages of the actor domain."""

from .base import Message  # noqa: F401

MESSAGES: tuple = ()
