"""Child specifications: what a session supervisor starts and how it treats an exit."""

from __future__ import annotations

from dataclasses import dataclass, field

from .restart import Restart


@dataclass(frozen=True)
class ChildSpec:
    """``id`` is unique within its session. ``actor_class`` is ``"module:Class"`` (an
    ``actors.runtime.actor.Actor`` subclass) started with ``args``. ``shutdown`` is how long a
    graceful stop may take before SIGTERM (then SIGKILL one second later). ``start_timeout``
    bounds the wait for the actor's *ready*. ``mailbox`` (16 hex characters, optional) makes the
    mailbox address stable across restarts (peers reconnect by themselves); empty = a fresh random
    address per incarnation."""

    id: str
    actor_class: str
    args: dict = field(default_factory=dict)
    restart: Restart = Restart.PERMANENT
    shutdown: float = 5.0
    start_timeout: float = 10.0
    mailbox: str = ""
