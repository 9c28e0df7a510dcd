"""Messages of the endpoint domain: a sync session's actors talking to an endpoint (the code that
runs next to the files, in a local agent process or a remote agent), and to each other.

Endpoint requests (served by ``agent.endpoint_actor.EndpointActor``):

- ``EndpointHello`` -> ``EndpointWelcome``: readiness; ``epoch`` is a random token of this
  endpoint incarnation. Requests that act on a scan (``StageBegin``, ``Transition``) carry the
  epoch the requester saw; an endpoint restarted since answers ``ErrorReply("stale", ...)``, so
  nothing is ever applied from a scan another incarnation made.
- ``Scan`` -> ``ScanReply``: incremental unless ``full``; the snapshot is sent only when it differs
  from the generation the requester already holds.
- ``StageBegin`` -> ``StageNeeds``: the receiving side reuses content it already has (its staging
  store, files of the same digest in its root) and answers which digests it still needs, each
  with where to resume (``offset``) and, for a large file it has an older version of, that
  file's chunk signature (a delta base).
- ``FileSizes`` -> ``Sizes``; ``Supply`` -> ``Supplied`` (sender side): file content in chunks of a
  bounded total size per request (raw bytes, or delta operations when the request names a base);
  ``StageChunks`` -> ``StageAck`` (receiver side): chunks written into staging, a file published
  only once its digest is verified; ``refetch`` lists files to fetch again whole.
- ``SupplyTo`` -> ``SuppliedTo`` (sender side, a local endpoint actor only: its
  ``EndpointWelcome.supply_to`` says so): read like ``Supply``, but the sender itself sends the
  chunks as ``StageChunks`` to the receiver's mailbox (``receiver``, an ``ipc://`` address) and
  answers with the chunks' metadata (``ChunkInfo``: no content) and the receiver's ``StageAck``;
  a refusal by the receiver is the ``SupplyTo``'s refusal (same code and text). Content then
  never passes through the stager (``actors.syncsession.stager``).
- ``Transition`` -> ``TransitionReply``: apply changes on disk (``actors.sync.transition``).
- Over an agent tunnel, ``Transition.moved``/``old_seen``, ``TransitionReply.old_as_asked``/
  ``as_asked`` and ``ScanReply.from_transition`` carry references instead of repeated subtrees
  (``agent.compaction``); the daemon's remote endpoint actor expands them, so other actors only
  ever see whole messages. Between the transitioner and the reconciler, a ``JobReply``'s
  ``SideResult`` is compact in the same way (``SideResult.old_as_asked``/``as_asked``): the
  reconciler expands it against the changes it requested.
- ``EndpointChanged`` (endpoint -> reconciler, no reply): the watcher saw changes.

Session-actor requests: ``GetSessionState`` -> ``SessionProgress`` and ``SessionFlush`` ->
``FlushTicket`` (daemon -> reconciler), ``ClearHalt`` (daemon -> reconciler), ``StageStart`` /
``TransitionStart`` -> ``JobStarted`` and ``JobStatus`` -> ``JobReply`` (reconciler -> stager,
transitioner): long operations run as jobs, polled with short deadlines, so a dead or hung actor
is noticed quickly and the reconciler's mailbox stays responsive.
"""

from typing import Optional, Union

import msgspec

from mutagen_actors.actors.sync.chunking import Signature
from mutagen_actors.actors.sync.delta import Copy, Literal, Start
from mutagen_actors.actors.sync.model import Change, Conflict, Counts, Entry, Problem

from .base import Message
from .sync import EndpointState, StagingProgress


class StageItem(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True,
                omit_defaults=True):
    """A file to stage. In ``StageNeeds`` the receiver adds where to start: ``offset`` (the
    verified prefix it already holds, see ``Staging.resume_path``) and ``signature`` (of the file
    it has at ``path``: the sender may send a delta against it)."""

    path: str
    digest: bytes
    offset: int = 0
    signature: Optional[Signature] = None


class SupplyRequest(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True,
                    omit_defaults=True):
    """Read ``path`` from ``offset``. With ``signature`` (the first request of a delta) or only
    ``base`` (its fingerprint, on later requests of the same file) the sender answers delta
    operations; a sender that no longer knows ``base`` answers raw bytes."""

    path: str
    digest: bytes
    offset: int
    signature: Optional[Signature] = None
    base: bytes = b""


class Chunk(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """A piece of the content of ``path`` (which should have ``digest``) starting at ``offset``;
    ``size`` is the file's size when read; ``eof`` marks the last piece; ``error`` (non-empty)
    means the sender could not read it (``data`` is then empty and ``eof`` true). A delta piece
    has empty ``data`` and ``delta`` operations (the first piece of a delta starts with
    ``Start``) producing ``span`` output bytes from ``offset``."""

    path: str
    digest: bytes
    offset: int
    size: int
    data: bytes
    eof: bool
    error: str = ""
    delta: Optional[list[Union[Start, Copy, Literal]]] = None
    span: int = 0

    @property
    def output(self) -> int:
        """Output bytes this piece produces."""
        return self.span if self.delta is not None else len(self.data)

    @property
    def payload(self) -> int:
        """Content bytes this piece carries (raw data or delta literals)."""
        if self.delta is None:
            return len(self.data)
        return sum(len(op.data) for op in self.delta if isinstance(op, Literal))


class ChunkInfo(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """What a ``Chunk`` was, without its content (``SuppliedTo``): the same ``path``, ``digest``,
    ``offset``, ``size``, ``eof``, ``error``; ``output`` and ``payload`` as the chunk's properties;
    ``delta`` whether it carried delta operations."""

    path: str
    digest: bytes
    offset: int
    size: int
    eof: bool
    error: str
    output: int
    payload: int
    delta: bool

    @classmethod
    def of(cls, chunk: Chunk) -> "ChunkInfo":
        return cls(chunk.path, chunk.digest, chunk.offset, chunk.size, chunk.eof, chunk.error,
                   chunk.output, chunk.payload, chunk.delta is not None)


class SideResult(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One side's transition outcome: ``results`` (``Change(path, old, actual)`` per change the
    endpoint addressed), ``problems``, ``missing_staged``.

    Compact form (transitioner -> reconciler, ``actors.syncsession.plan.compact_results``): with
    ``old_as_asked`` every result's ``old`` is sent as None and means the requested change's
    ``old``; a position in ``as_asked`` marks a result sent with ``new=None`` whose actual entry
    is the requested ``new``. The receiver expands them against the changes it requested
    (``plan.expand_results``), refusing a result or reference that does not fit."""

    results: list[Change] = []
    problems: list[Problem] = []
    missing_staged: bool = False
    old_as_asked: bool = False
    as_asked: list[int] = []


# ---------------------------------------------------------------------------- endpoint


class EndpointHello(Message):
    pass


class EndpointWelcome(Message):
    """``supply_to``: this endpoint serves ``SupplyTo`` (a local endpoint actor; not a remote
    one, whose sends would have to be relayed back through the tunnel)."""

    epoch: str
    watch_state: str
    supply_to: bool = False


class Scan(Message):
    """``have_epoch``/``have_generation``: the snapshot the requester holds (skip sending it if
    still current). ``full``: walk the whole root. ``fresh`` (a flush): the snapshot must hold
    every change made before the request; a natively watching endpoint drains its watcher's
    queue and scans incrementally, any other endpoint scans in full."""

    full: bool
    have_generation: int = 0
    have_epoch: str = ""
    fresh: bool = False


class ScanReply(Message):
    """``changed`` False: the requester's snapshot is still current (``root`` omitted). Else
    either ``delta`` (changes turning the requester's generation into this one, each
    ``Change(path, None, new)``) or the whole ``root``."""

    epoch: str
    generation: int
    changed: bool
    root: Optional[Entry]
    counts: Counts
    problems: list[Problem]
    watch_state: str
    delta: Optional[list[Change]] = None
    from_transition: list[int] = []  # agent tunnel: see agent.compaction


class StageBegin(Message):
    epoch: str
    items: list[StageItem]


class StageNeeds(Message):
    items: list[StageItem]


class FileSizes(Message):
    paths: list[str]


class Sizes(Message):
    sizes: list[int]  # -1: unknown


class Supply(Message):
    requests: list[SupplyRequest]
    max_bytes: int


class Supplied(Message):
    chunks: list[Chunk]


class SupplyTo(Message):
    """``Supply`` whose chunks go straight to ``receiver`` (an ``ipc://`` mailbox address) as one
    ``StageChunks``; answered once the receiver acknowledged them."""

    requests: list[SupplyRequest]
    max_bytes: int
    receiver: str


class StageChunks(Message):
    chunks: list[Chunk]


class StageAck(Message):
    """``refetch``: files whose delta failed or whose content did not verify; their partial
    content is discarded and the stager fetches them again whole, from offset 0 (once)."""

    completed: int
    problems: list[Problem]
    refetch: list[StageItem] = []


class SuppliedTo(Message):
    """``SupplyTo``'s answer: what was read and sent (``chunks``, without content; empty when
    nothing was requested) and the receiver's ``ack`` of it."""

    chunks: list[ChunkInfo]
    ack: StageAck


class Transition(Message):
    epoch: str
    changes: list[Change]
    moved: list[tuple[int, int]] = []  # agent tunnel: see agent.compaction
    old_seen: list[tuple[int, bytes]] = []


class TransitionReply(Message):
    result: SideResult
    old_as_asked: bool = False  # agent tunnel: see agent.compaction
    as_asked: list[int] = []


class EndpointChanged(Message):
    side: str


# ---------------------------------------------------------------------------- session actors


class GetSessionState(Message):
    pass


class SessionProgress(Message):
    status: str
    revision: int
    successful_cycles: int
    last_error: str
    conflicts: list[Conflict]
    alpha: EndpointState
    beta: EndpointState
    flush_completed: int
    flush_failed: int
    flush_error: str


class SessionFlush(Message):
    pass


class FlushTicket(Message):
    ticket: int


class ClearHalt(Message):
    pass


class StageStart(Message):
    receiver: str  # "alpha" or "beta"; the other side sends
    items: list[StageItem]


class TransitionStart(Message):
    alpha_epoch: str
    beta_epoch: str
    alpha: list[Change]
    beta: list[Change]


class JobStarted(Message):
    job: int


class JobStatus(Message):
    """Answered with the job's ``JobReply`` as soon as it is done, or after ``wait`` seconds."""

    job: int
    wait: float = 0.0


class JobReply(Message):
    job: int
    done: bool
    error: str = ""
    progress: Optional[StagingProgress] = None
    alpha: Optional[SideResult] = None
    beta: Optional[SideResult] = None
    problems: list[Problem] = []  # a staging job's per-file refusals (why a file is missing)


MESSAGES: tuple = (
    EndpointHello, EndpointWelcome, Scan, ScanReply, StageBegin, StageNeeds, FileSizes, Sizes,
    Supply, Supplied, StageChunks, StageAck, Transition, TransitionReply, EndpointChanged,
    GetSessionState, SessionProgress, SessionFlush, FlushTicket, ClearHalt, StageStart,
    TransitionStart, JobStarted, JobStatus, JobReply, SupplyTo, SuppliedTo,
)
