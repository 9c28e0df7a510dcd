"""Messages of the control domain."""

from .base import Message  # noqa: F401

MESSAGES: tuple = ()
