"""Messages of the forward domain."""

from .base import Message  # noqa: F401

MESSAGES: tuple = ()
