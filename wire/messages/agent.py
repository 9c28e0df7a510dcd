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


MESSAGES: tuple = (AgentInfo, AgentInfoReply, AgentEcho, AgentEchoed)
