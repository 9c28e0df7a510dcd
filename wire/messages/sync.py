"""Messages of the sync domain: the CLI managing synchronization sessions through the daemon.

Settings travel as the words users type (``"two-way-safe"``, ``"portable"``) with ``""`` (or 0)
meaning *default*: a session stores what the user chose, and the default is resolved when the
session runs (``list --long`` shows ``Default (Two Way Safe)``). Validation happens twice: in the
CLI for a friendly message, and in the daemon, which never trusts its peer.
"""

from typing import Optional

import msgspec

from mutagen_actors.actors.sync.model import Conflict, Problem

from .base import Message


class Struct(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class EndpointUrl(Struct):
    """Where an endpoint lives. ``protocol``: ``local``, ``ssh`` or ``docker``. ``path`` is
    absolute for local endpoints; for remote ones it may be relative to (or start with ``~``) the
    remote home. ``environment``: Docker variables captured when the session was created."""

    protocol: str = "local"
    user: str = ""
    host: str = ""
    port: int = 0
    path: str = ""
    environment: dict[str, str] = {}


class EndpointConfiguration(Struct):
    """Settings that may differ between alpha and beta ("" / 0 = default)."""

    watch_mode: str = ""
    watch_polling_interval: int = 0
    scan_mode: str = ""
    stage_mode: str = ""
    default_file_mode: int = 0
    default_directory_mode: int = 0
    default_owner: str = ""
    default_group: str = ""
    max_entry_count: int = 0
    max_staging_file_size: int = 0
    compression: str = ""
    probe_mode: str = ""  # "probe" | "assume" (added by the CLI author; "" = default)


class SyncConfiguration(Struct):
    """Session-wide settings. ``ignore_vcs``: None = default (propagate), True = ignore VCS
    directories, False = propagate. ``endpoint`` holds the session-wide values of the settings
    that can also be given per side; ``alpha``/``beta`` override them on that side."""

    mode: str = ""
    hash: str = ""
    symlink_mode: str = ""
    ignore_syntax: str = ""
    ignores: list[str] = []
    ignore_vcs: Optional[bool] = None
    permissions_mode: str = ""
    endpoint: EndpointConfiguration = msgspec.field(default_factory=EndpointConfiguration)
    alpha: EndpointConfiguration = msgspec.field(default_factory=EndpointConfiguration)
    beta: EndpointConfiguration = msgspec.field(default_factory=EndpointConfiguration)


class Selection(Struct):
    """Which sessions a command acts on: exactly one mechanism (names/identifiers, a label
    selector, or all); ``list``/``monitor`` with none select every session."""

    specifications: list[str] = []
    label_selector: str = ""
    all: bool = False


class StagingProgress(Struct):
    """One staging pass on one side (accounting rules: ``actors.syncsession.staging_progress``).
    Counts only content that travels (files the receiver reused are in no count); bytes are
    content bytes in the receiver's staging store; ``path``/``received_size``/``expected_size``
    are the file written last. At the end of a pass received equals expected."""

    path: str = ""
    received_size: int = 0
    expected_size: int = 0
    received_files: int = 0
    expected_files: int = 0
    total_received_size: int = 0
    total_expected_size: int = 0
    seconds_remaining: float = -1.0  # -1: no estimate yet


class EndpointState(Struct, kw_only=True):
    url: EndpointUrl
    connected: bool = False
    scanned: bool = False
    directories: int = 0
    files: int = 0
    symbolic_links: int = 0
    total_file_size: int = 0
    scan_problems: list[Problem] = []
    transition_problems: list[Problem] = []
    staging_progress: Optional[StagingProgress] = None
    watch_state: str = ""
    # The final numbers of the last staging pass that completed on this side (until the next).
    last_staging: Optional[StagingProgress] = None
    # Why this side's last connect attempt failed, until it connects ("" if none failed): a
    # remote endpoint's refusal ``unreachable``, e.g. "unable to connect to host:22: ...".
    connect_error: str = ""


class SyncSessionState(Struct, kw_only=True):
    """Everything ``sync list`` (and ``--json``) shows about one session.

    ``status`` is the machine form (``STATUS_DESCRIPTIONS`` gives the text Mutagen shows).
    """

    identifier: str
    name: str = ""
    labels: dict[str, str] = {}
    created: float = 0.0
    paused: bool = False
    status: str = "disconnected"
    successful_cycles: int = 0
    last_error: str = ""
    conflicts: list[Conflict] = []
    alpha: EndpointState
    beta: EndpointState
    configuration: SyncConfiguration = msgspec.field(default_factory=SyncConfiguration)


# Machine form -> what ``list`` prints (Mutagen's wording).
STATUS_DESCRIPTIONS = {
    "disconnected": "Disconnected",
    "halted-on-root-emptied": "Halted due to one-sided root emptying",
    "halted-on-root-deletion": "Halted due to root deletion",
    "halted-on-root-type-change": "Halted due to root type change",
    "halted-on-actor-failure": "Halted due to repeated actor failure",
    "connecting-alpha": "Connecting to alpha",
    "connecting-beta": "Connecting to beta",
    "watching": "Watching for changes",
    "scanning": "Scanning files",
    "waiting-for-rescan": "Waiting for rescan",  # after a failed cycle (Mutagen says "5 seconds")
    "reconciling": "Reconciling changes",
    "staging-alpha": "Staging files on alpha",
    "staging-beta": "Staging files on beta",
    "transitioning": "Applying changes",
    "saving": "Saving archive",
}


# ---------------------------------------------------------------------------- requests


class SyncCreate(Message):
    """Create a session; answered ``SyncCreated``. Unless ``paused``, the daemon connects to both
    endpoints before answering and creates nothing if it cannot."""

    alpha: EndpointUrl
    beta: EndpointUrl
    name: str
    labels: dict[str, str]
    paused: bool
    configuration: SyncConfiguration


class SyncCreated(Message):
    identifier: str


class SyncList(Message):
    """Answered ``SyncListReply``, sessions sorted by creation time. With ``after_index`` > 0 the
    daemon holds the answer (long poll, at most ``wait`` seconds) until the state index moves
    past it: what ``monitor`` uses."""

    selection: Selection
    after_index: int = 0
    wait: float = 0.0


class SyncListReply(Message):
    sessions: list[SyncSessionState]
    index: int = 0


class SyncFlush(Message):
    """Run a full cycle on each selected session; unless ``skip_wait``, answered once those
    cycles completed (an error reply if one failed, or a session is paused)."""

    selection: Selection
    skip_wait: bool = False


class SyncPause(Message):
    selection: Selection


class SyncResume(Message):
    selection: Selection


class SyncReset(Message):
    selection: Selection


class SyncTerminate(Message):
    selection: Selection


class SyncAffected(Message):
    """Answer to pause/resume/reset/terminate/flush: the identifiers acted on, in order."""

    identifiers: list[str]


MESSAGES: tuple = (
    SyncCreate, SyncCreated, SyncList, SyncListReply, SyncFlush, SyncPause, SyncResume,
    SyncReset, SyncTerminate, SyncAffected,
)
