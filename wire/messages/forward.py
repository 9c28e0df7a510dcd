"""Messages of the forward domain: what a supervisor asks a forwarder actor.

A forwarder answers ``GetForwardingStatistics`` with ``ForwardingStatistics``:
``listening`` is the address actually listened on (``tcp:127.0.0.1:8080``, ``unix:/path``; the
real port when port 0 was asked), ``open_connections`` / ``total_connections`` count accepted
connections, ``outbound_bytes`` went source to destination and ``inbound_bytes`` destination to
source, ``errors`` counts failed dials and accepts and ``last_error`` is the text of the latest
("" if none). Counters start at zero with each incarnation of the actor.
"""

from .base import Message


class GetForwardingStatistics(Message):
    """Ask a forwarder actor for its ``ForwardingStatistics``."""


class ForwardingStatistics(Message):
    listening: str
    open_connections: int
    total_connections: int
    outbound_bytes: int
    inbound_bytes: int
    errors: int
    last_error: str


MESSAGES: tuple = (GetForwardingStatistics, ForwardingStatistics)
