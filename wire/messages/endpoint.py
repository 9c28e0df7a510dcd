"""Messages of the endpoint domain: a session's actors talking to an endpoint (the code that runs
next to the files, in a local agent process or a remote agent)."""

from .base import Message  # noqa: F401

MESSAGES: tuple = ()
