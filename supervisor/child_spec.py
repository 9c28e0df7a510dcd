"""Child specifications: what a session supervisor starts and how it treats an exit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .restart import Restart

# Seconds an on-demand child may stay without work before it exits (hibernates).
IDLE_EXIT = 30.0
IDLE_EXIT_VARIABLE = "MUTAGEN_ACTORS_IDLE_EXIT"  # a knob for tests and benchmarks


def idle_exit_setting(environ=os.environ) -> float:
    """``MUTAGEN_ACTORS_IDLE_EXIT`` (seconds, 0.1-86400) or ``IDLE_EXIT``; a value that is not
    a number or out of range gives the default."""
    try:
        value = float(environ.get(IDLE_EXIT_VARIABLE, IDLE_EXIT))
    except ValueError:
        return IDLE_EXIT
    return value if 0.1 <= value <= 86400 else IDLE_EXIT


@dataclass(frozen=True)
class ChildSpec:
    """``id`` is unique within its session. ``actor_class`` is ``"module:Class"`` (an
    ``actors.runtime.actor.Actor`` subclass) started with ``args``. ``shutdown`` is how long a
    graceful stop may take before SIGTERM (then SIGKILL one second later). ``start_timeout``
    bounds the wait for the actor's *ready*. ``mailbox`` (16 hex characters, optional) makes the
    mailbox address stable across restarts (peers reconnect by themselves); empty = a fresh random
    address per incarnation.

    ``on_demand``: the child is not started with its session; it *hibernates* until someone
    asks the supervisor to wake it (``SessionSupervisor.wake``), and it exits by itself (status
    0) after ``idle_exit`` seconds without work. That exit is not a crash: no restart, no
    restart budget, state ``hibernating``. An abnormal exit (kill -9, non-zero status) is a
    crash and is handled by ``restart`` as for any child. Needs a stable ``mailbox``."""

    id: str
    actor_class: str
    args: dict = field(default_factory=dict)
    restart: Restart = Restart.PERMANENT
    shutdown: float = 5.0
    start_timeout: float = 10.0
    mailbox: str = ""
    on_demand: bool = False
    idle_exit: float = IDLE_EXIT
