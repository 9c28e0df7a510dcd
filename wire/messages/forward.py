"""Messages of the forward domain: what a supervisor asks a forwarder actor.

A forwarder answers ``GetForwardingStatistics`` with ``ForwardingStatistics``:
``listening`` is the address actually listened on (``tcp:127.0.0.1:8080``, ``unix:/path``; the
real port when port 0 was asked), ``open_connections`` / ``total_connections`` count accepted
connections, ``outbound_bytes`` went source to destination and ``inbound_bytes`` destination to
source, ``errors`` counts failed dials and accepts and ``last_error`` is the text of the latest
("" if none). Counters start at zero with each incarnation of the actor. ``status`` is
``forwarding``, or ``connecting-source`` / ``connecting-destination`` while a remote side is
being (re)connected, with ``last_error`` then saying why it is not connected;
``source_connected`` / ``destination_connected`` say which side is up (a local side always is).

The CLI manages forwarding sessions through the daemon with ``ForwardCreate`` / ``ForwardList``
/ ``ForwardPause`` / ``ForwardResume`` / ``ForwardTerminate`` (below; they mirror the sync
domain's messages).
"""

import msgspec

from .base import Message
from .sync import EndpointUrl, Selection


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
    status: str = "forwarding"
    source_connected: bool = True
    destination_connected: bool = True


MESSAGES: tuple = (GetForwardingStatistics, ForwardingStatistics)


# ---------------------------------------------------------------------------- CLI <-> daemon
#
# Forwarding sessions, managed by the daemon for the CLI (mirrors ``wire.messages.sync``). A
# forwarding URL reuses ``sync.EndpointUrl``: ``path`` holds the ``<protocol>:<address>``
# endpoint (``tcp:localhost:8080``, ``unix:/run/app.sock``). Settings travel as typed, with ""
# (or 0) meaning *default*; the daemon validates everything again.

class _Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class SocketConfiguration(_Struct):
    """Unix-domain listener settings ("" / 0 = default: ``leave``, the creating user and group,
    0600). They only matter on the side that listens (the source)."""

    overwrite_mode: str = ""
    owner: str = ""
    group: str = ""
    permission_mode: int = 0


class ForwardConfiguration(_Struct):
    """``socket`` holds the session-wide values; ``source``/``destination`` override them on
    that side only."""

    socket: SocketConfiguration = msgspec.field(default_factory=SocketConfiguration)
    source: SocketConfiguration = msgspec.field(default_factory=SocketConfiguration)
    destination: SocketConfiguration = msgspec.field(default_factory=SocketConfiguration)


class ForwardEndpointState(_Struct, kw_only=True):
    url: EndpointUrl
    connected: bool = False


class ForwardSessionState(_Struct, kw_only=True):
    """Everything ``forward list`` (and ``--json``) shows about one session.

    ``status`` is the machine form (``FORWARD_STATUS_DESCRIPTIONS`` gives the text shown).
    ``listening`` is the address actually listened on ("" when not listening). Connection and
    byte counters (``total_outbound_data``: source to destination) add up over the forwarder's
    restarts for as long as the daemon runs; ``open_connections`` is the current count.
    ``errors`` counts failed dials and accepts.
    """

    identifier: str
    name: str = ""
    labels: dict[str, str] = {}
    created: float = 0.0
    paused: bool = False
    status: str = "disconnected"
    last_error: str = ""
    source: ForwardEndpointState
    destination: ForwardEndpointState
    configuration: ForwardConfiguration = msgspec.field(default_factory=ForwardConfiguration)
    listening: str = ""
    open_connections: int = 0
    total_connections: int = 0
    total_outbound_data: int = 0
    total_inbound_data: int = 0
    errors: int = 0


# Machine form -> what ``list`` prints (Mutagen's wording, plus our halted state).
FORWARD_STATUS_DESCRIPTIONS = {
    "disconnected": "Disconnected",
    "connecting-source": "Connecting to source",
    "connecting-destination": "Connecting to destination",
    "forwarding": "Forwarding",
    "halted-on-actor-failure": "Halted due to repeated forwarder failure",
}


class ForwardCreate(Message):
    """Create a session; answered ``ForwardCreated``. Unless ``paused``, the daemon answers once
    the source listens, and creates nothing if it cannot listen."""

    source: EndpointUrl
    destination: EndpointUrl
    name: str
    labels: dict[str, str]
    paused: bool
    configuration: ForwardConfiguration


class ForwardCreated(Message):
    identifier: str


class ForwardList(Message):
    """Answered ``ForwardListReply``, sessions sorted by creation time. With ``after_index`` > 0
    the answer is held (long poll, at most ``wait`` seconds) until the state index moves past
    it: what ``monitor`` uses."""

    selection: Selection
    after_index: int = 0
    wait: float = 0.0


class ForwardListReply(Message):
    sessions: list[ForwardSessionState]
    index: int = 0


class ForwardPause(Message):
    selection: Selection


class ForwardResume(Message):
    selection: Selection


class ForwardTerminate(Message):
    selection: Selection


class ForwardAffected(Message):
    """Answer to pause/resume/terminate: the identifiers acted on, in order."""

    identifiers: list[str]


MESSAGES = MESSAGES + (
    ForwardCreate, ForwardCreated, ForwardList, ForwardListReply, ForwardPause, ForwardResume,
    ForwardTerminate, ForwardAffected,
)
