"""What a new actor process is told when it starts (pickled to the fork server)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ActorLaunch:
    """``actor_class`` is ``"module:Class"`` (imported in the child: lazy imports stay lazy in
    the daemon). ``mailbox`` is the ``ipc://`` endpoint the actor binds. ``supervisor_pid`` is
    the daemon: the actor exits by itself when that process goes away. ``restarts`` is how often
    this actor was restarted before (reported in its statistics). ``log_path`` is the shared log
    file ("" logs nowhere). ``idle_exit``: seconds without work after which the actor exits by
    itself with status 0 (hibernation of an on-demand child); 0 = never."""

    session: str
    actor_id: str
    actor_class: str
    mailbox: str
    supervisor_pid: int
    restarts: int = 0
    log_path: str = ""
    log_level: str = "info"
    args: dict = field(default_factory=dict)
    idle_exit: float = 0.0
