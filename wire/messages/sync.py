"""Messages of the sync domain."""

from .base import Message  # noqa: F401

MESSAGES: tuple = ()
