"""Messages of the agent domain: what the daemon asks a remote agent about itself.

A remote agent answers these beside the endpoint messages it serves: ``AgentInfo`` (who and
where it is: ``AgentInfoReply``) and ``AgentEcho`` (the payload back as ``AgentEchoed``; used to
check a tunnel end to end and to measure it).
"""

from .base import Message


class AgentInfo(Message):
    """Ask a remote agent for its ``AgentInfoReply``."""


class AgentInfoReply(Message):
    """``version``: the agent's install identity; ``python``: ``major.minor.micro``;
    ``platform``: ``<os>-<machine>``; ``directory``: where the agent is installed; ``pid``."""

    version: str
    python: str
    platform: str
    directory: str
    pid: int


class AgentEcho(Message):
    payload: bytes


class AgentEchoed(Message):
    payload: bytes


class EndpointOpen(Message):
    """Start serving one synchronization root in this agent (``agent.serve_endpoint``).

    ``settings``: the ``agent.endpoint.EndpointSettings`` fields as plain values; ``root`` may be
    relative to (or start with ``~``) the remote user's home. Answered with ``EndpointOpened``;
    after it the agent answers the endpoint messages (``wire.messages.endpoint``) for that root."""

    settings: dict


class EndpointOpened(Message):
    """``root``: the absolute root the agent serves; ``epoch``: the endpoint incarnation."""

    root: str
    epoch: str


MESSAGES: tuple = (AgentInfo, AgentInfoReply, AgentEcho, AgentEchoed, EndpointOpen,
                   EndpointOpened)
