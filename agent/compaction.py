"""Compact encoding of change metadata on the agent tunnel (pure; no I/O).

A rename of a 10,000-file directory used to cross the tunnel four times as whole subtrees: in
the ``Transition`` (the deleted directory's ``old`` and the new directory's ``new``), in the
``TransitionReply`` (each result repeats the request's ``old`` and, when all went as asked, its
``new``), and in the next ``ScanReply``'s delta (the endpoint's own writes, seen by its scan).
Each of these repeats something the receiver already holds, so it is sent as a reference:

- ``compact_transition(changes) -> (changes, moved)``: a change whose ``new`` directory equals
  another change's ``old`` (a subtree moved within the transition) is sent with ``new=None``
  and the pair ``(its index, the other's index)`` in ``moved``; ``expand_transition`` restores
  it.
- ``compact_results(changes, results) -> (results, old_as_asked, as_asked)``: every result
  repeats its request's ``old`` (``transition`` returns ``Change(path, old, actual)``): when all
  do, they are sent with ``old=None`` and ``old_as_asked`` set; a result whose ``new`` is what
  was asked is sent with ``new=None`` and its position in ``as_asked``. ``expand_results``
  restores both from the request.
- ``compact_olds(changes) -> (changes, old_seen)``: a change's ``old`` directory is what the
  endpoint's last scan saw at that path (the daemon got it from that scan), so it is sent as
  ``(index, fingerprint)`` in ``old_seen`` (``fingerprint``: BLAKE2b-128 of its encoding);
  ``expand_olds(changes, old_seen, snapshot)`` takes the entry at that path from the endpoint's
  last scan and checks its fingerprint. A mismatch (or a path the scan does not hold) raises
  ``ReferenceMiss``: the agent refuses with ``reference-miss`` and the daemon's actor sends the
  request again whole, so a wrong guess costs one round trip, never a wrong ``old``.
- ``compact_delta(delta, written) -> (delta, from_transition)``: a scan delta
  ``Change(path, None, new)`` whose ``new`` equals what the endpoint's last transition reported
  at that path (``written``: path -> entry, the expanded results both ends keep until the next
  scan reply) is sent with ``new=None`` and its position in ``from_transition``;
  ``expand_delta`` restores it.

- ``shallow_changes(body) -> changes | None``: a ``Transition`` none of whose changes the
  daemon side would compact (no ``old`` directory of 2+ entries, no references yet) is relayed
  as it came; its changes are read with their entries left encoded (``msgspec.Raw``, ``None``
  for nil), which is all ``expand_results``/``expand_delta`` need to put them back into the
  replies (an encoder writes a ``Raw`` as it is). None means "decode it and compact".

Failure rules: the ``expand_*`` functions raise ``ValueError`` for a reference that does not fit
(an index out of range, a path the request does not hold, a referenced entry that is missing):
the caller must fail the request (the cycle then re-runs from a fresh scan), never guess. The
compacting side only references what the expanding side provably holds: the request it is
answering, or results both ends recorded from the same reply on the same link. Paths of a
request must be distinct for results to be compacted (otherwise they are sent whole).
"""

from __future__ import annotations

from typing import Optional

try:  # the builtin module: importing hashlib would load OpenSSL's libcrypto (~3.5 MB resident)
    from _blake2 import blake2b
except ImportError:  # an interpreter built without it
    from hashlib import blake2b

import msgspec
from msgspec.structs import replace

from mutagen_actors.actors.sync.model import Change, Entry, Kind

__all__ = ["AgentSide", "DaemonSide", "REFERENCE_MISS", "ReferenceMiss", "compact_olds",
           "shallow_changes",
           "expand_olds", "fingerprint", "compact_transition", "expand_transition",
           "compact_results", "expand_results", "compact_delta", "expand_delta", "written_entries"]

_MIN_REFERENCED = 2  # a directory with fewer entries is sent as it is
REFERENCE_MISS = "reference-miss"  # the agent's refusal code: send the request again whole
_encoder = msgspec.msgpack.Encoder(order="deterministic")  # equal entries, equal bytes


class ReferenceMiss(ValueError):
    """A reference to the endpoint's last scan does not match it (the request must be re-sent
    whole)."""


def _worth(entry: Optional[Entry]) -> bool:
    return (entry is not None and entry.kind == Kind.DIRECTORY
            and len(entry.contents) >= _MIN_REFERENCED)


def compact_transition(changes: list[Change]) -> tuple[list[Change], list[tuple[int, int]]]:
    candidates: dict[tuple, list[int]] = {}
    for index, change in enumerate(changes):
        if _worth(change.old):
            candidates.setdefault(_shape(change.old), []).append(index)
    if not candidates:
        return changes, []
    out = list(changes)
    moved: list[tuple[int, int]] = []
    for index, change in enumerate(changes):
        if not _worth(change.new):
            continue
        for source in candidates.get(_shape(change.new), ()):
            if source != index and changes[source].old == change.new:
                out[index] = Change(change.path, change.old, None)
                moved.append((index, source))
                break
    return (out, moved) if moved else (changes, [])


def expand_transition(changes: list[Change], moved: list[tuple[int, int]]) -> list[Change]:
    if not moved:
        return changes
    out = list(changes)
    for index, source in moved:
        if not (0 <= index < len(out) and 0 <= source < len(changes)) or \
                out[index].new is not None or changes[source].old is None:
            raise ValueError(f"transition move reference ({index}, {source}) does not fit")
        out[index] = Change(out[index].path, out[index].old, changes[source].old)
    return out


def _by_path(changes: list[Change]) -> Optional[dict[str, Change]]:
    found = {change.path: change for change in changes}
    return found if len(found) == len(changes) else None


def compact_results(changes: list[Change], results: list[Change], same=None
                    ) -> tuple[list[Change], bool, list[int]]:
    """``same(entry, requested)``: whether a result's entry is the requested one (default:
    identity or equality; the transitioner compares encodings of requests it holds encoded)."""
    asked = _by_path(changes)
    if asked is None or len(results) > len(changes):
        return results, False, []
    seen: set[str] = set()
    for result in results:
        if result.path not in asked or result.path in seen:
            return results, False, []
        seen.add(result.path)
    same = same or _same
    old_as_asked = all(same(result.old, asked[result.path].old) for result in results)
    out: list[Change] = []
    as_asked: list[int] = []
    for position, result in enumerate(results):
        new = result.new
        if new is not None and same(new, asked[result.path].new):
            as_asked.append(position)
            new = None
        out.append(Change(result.path, None if old_as_asked else result.old, new))
    if not old_as_asked and not as_asked:
        return results, False, []
    return out, old_as_asked, as_asked


def expand_results(changes: list[Change], results: list[Change], old_as_asked: bool,
                   as_asked: list[int]) -> list[Change]:
    if not old_as_asked and not as_asked:
        return results
    if len(results) > len(changes):
        raise ValueError(f"{len(results)} compact transition results for {len(changes)} "
                         f"requested changes")
    asked = _by_path(changes)
    if asked is None:
        raise ValueError("compact transition results for requested changes that repeat a path")
    positions = set(as_asked)
    if len(positions) != len(as_asked):
        raise ValueError("compact transition results refer to a result twice")
    for position in positions:
        if not 0 <= position < len(results):
            raise ValueError(f"compact transition result reference {position} is out of range "
                             f"({len(results)} results)")
    seen: set[str] = set()
    out: list[Change] = []
    for position, result in enumerate(results):
        request = asked.get(result.path)
        if request is None:
            raise ValueError(f"a compact transition result for {result.path!r}, which was not "
                             f"requested")
        if result.path in seen:
            raise ValueError(f"two compact transition results for {result.path!r}")
        seen.add(result.path)
        if old_as_asked and result.old is not None:
            raise ValueError(f"the compact transition result for {result.path!r} carries an "
                             f"old entry although old entries are as requested")
        new = result.new
        if position in positions:
            if new is not None or request.new is None:
                raise ValueError(f"the compact transition result for {result.path!r} says "
                                 f"'as requested' but "
                                 + ("carries its own entry" if new is not None
                                    else "its change requested nothing there"))
            new = request.new
        out.append(Change(result.path, request.old if old_as_asked else result.old, new))
    return out


def compact_delta(delta: Optional[list[Change]], written: Optional[dict[str, Entry]]
                  ) -> tuple[Optional[list[Change]], list[int]]:
    if not delta or not written:
        return delta, []
    out = list(delta)
    references: list[int] = []
    for position, change in enumerate(delta):
        entry = written.get(change.path)
        if _worth(change.new) and entry is not None and _same(change.new, entry):
            out[position] = Change(change.path, change.old, None)
            references.append(position)
    return (out, references) if references else (delta, [])


def expand_delta(delta: Optional[list[Change]], references: list[int],
                 written: Optional[dict[str, Entry]]) -> Optional[list[Change]]:
    if not references:
        return delta
    if delta is None or written is None:
        raise ValueError("a scan delta refers to a transition this side does not remember")
    out = list(delta)
    for position in references:
        if not 0 <= position < len(out) or out[position].new is not None:
            raise ValueError(f"scan delta reference {position} does not fit")
        entry = written.get(out[position].path)
        if entry is None:
            raise ValueError(f"scan delta refers to {out[position].path!r}, which the last "
                             f"transition did not write")
        out[position] = Change(out[position].path, out[position].old, entry)
    return out


def fingerprint(entry: Entry) -> bytes:
    return blake2b(_encoder.encode(entry), digest_size=16).digest()


def compact_olds(changes: list[Change]) -> tuple[list[Change], list[tuple[int, bytes]]]:
    out = list(changes)
    seen: list[tuple[int, bytes]] = []
    for index, change in enumerate(changes):
        if _worth(change.old):
            out[index] = Change(change.path, None, change.new)
            seen.append((index, fingerprint(change.old)))
    return (out, seen) if seen else (changes, [])


def entry_at(root: Optional[Entry], path: str) -> Optional[Entry]:
    entry = root
    for name in path.split("/") if path else ():
        if entry is None or entry.kind != Kind.DIRECTORY:
            return None
        entry = entry.contents.get(name)
    return entry


def expand_olds(changes: list[Change], old_seen: list[tuple[int, bytes]],
                snapshot: Optional[Entry]) -> list[Change]:
    if not old_seen:
        return changes
    out = list(changes)
    for index, expected in old_seen:
        if not 0 <= index < len(out) or out[index].old is not None:
            raise ValueError(f"transition old reference {index} does not fit")
        entry = entry_at(snapshot, out[index].path)
        if entry is None or fingerprint(entry) != bytes(expected):
            raise ReferenceMiss(f"{out[index].path!r} is not what the last scan saw")
        out[index] = Change(out[index].path, entry, out[index].new)
    return out


class _RawChange(msgspec.Struct, array_like=True, frozen=True):
    path: str
    old: msgspec.Raw
    new: msgspec.Raw


class _ShallowTransition(msgspec.Struct, array_like=True, tag="Transition"):
    """``wire.messages.endpoint.Transition`` with its entries left encoded (same encoding)."""

    epoch: str
    changes: list[_RawChange]
    moved: list[tuple[int, int]] = []
    old_seen: list[tuple[int, bytes]] = []


_shallow_transition = msgspec.msgpack.Decoder(_ShallowTransition)
_entry_fields = msgspec.msgpack.Decoder(list[msgspec.Raw])
_contents = msgspec.msgpack.Decoder(dict[str, msgspec.Raw])
_NIL = b"\xc0"


def _encoded_or_none(raw: msgspec.Raw) -> Optional[msgspec.Raw]:
    return None if len(raw) == 1 and bytes(raw) == _NIL else raw


def _encoded_worth(raw: Optional[msgspec.Raw]) -> bool:
    """``_worth`` of an encoded entry (reads its kind and the size of its contents only)."""
    if raw is None:
        return False
    fields = _entry_fields.decode(raw)
    if not fields or msgspec.msgpack.decode(fields[0]) != Kind.DIRECTORY:
        return False
    return len(fields) > 1 and len(_contents.decode(fields[1])) >= _MIN_REFERENCED


def shallow_changes(body) -> Optional[list[Change]]:
    """The changes of an encoded ``Transition`` body whose entries stay encoded (``Change``s
    holding ``msgspec.Raw`` or None: for encoders and ``expand_*`` only, never for comparing),
    or None when the transition must be decoded: ``DaemonSide.outgoing`` would compact it (an
    ``old`` directory worth a reference), it already carries references, or it does not have a
    transition's shape (the full decode then says what is wrong). Never raises."""
    try:
        transition = _shallow_transition.decode(body)
        if transition.moved or transition.old_seen:
            return None
        changes = []
        for change in transition.changes:
            old = _encoded_or_none(change.old)
            if _encoded_worth(old):
                return None
            changes.append(Change(change.path, old, _encoded_or_none(change.new)))
        return changes
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError, ValueError):
        return None


def written_entries(results: list[Change]) -> dict[str, Entry]:
    """path -> entry of the (expanded) results that left something on disk: what
    ``compact_delta``/``expand_delta`` may refer to."""
    return {result.path: result.new for result in results if result.new is not None}


def _shape(entry: Entry) -> tuple:
    return (len(entry.contents), frozenset(entry.contents))


def _same(a: Optional[Entry], b: Optional[Entry]) -> bool:
    return a is b or a == b


class AgentSide:
    """The agent's half (``agent.serve_endpoint.EndpointService``): ``incoming(request)`` expands
    a ``Transition`` (``ValueError`` if its references do not fit); ``outgoing(request, reply)``
    compacts a ``TransitionReply`` (remembering what was written) or a ``ScanReply`` (which
    consumes that memory)."""

    def __init__(self) -> None:
        self.written: Optional[dict[str, Entry]] = None

    def incoming(self, request, snapshot: Optional[Entry] = None):
        """``snapshot``: the root of the endpoint's last scan (what ``old_seen`` refers to)."""
        from mutagen_actors.wire.messages import endpoint as m

        if not isinstance(request, m.Transition):
            return request
        self.written = None  # only this transition's results may be referred to next
        if request.moved or request.old_seen:
            changes = expand_olds(request.changes, request.old_seen, snapshot)
            changes = expand_transition(changes, request.moved)
            return replace(request, changes=changes, moved=[], old_seen=[])
        return request

    def outgoing(self, request, reply):
        from mutagen_actors.wire.messages import endpoint as m

        if isinstance(reply, m.TransitionReply) and isinstance(request, m.Transition):
            result = reply.result
            self.written = written_entries(result.results)
            results, old_as_asked, as_asked = compact_results(request.changes, result.results)
            return replace(reply, result=replace(result, results=results),
                           old_as_asked=old_as_asked, as_asked=as_asked)
        if isinstance(reply, m.ScanReply):
            written, self.written = self.written, None
            delta, references = compact_delta(reply.delta, written)
            if references:
                return replace(reply, delta=delta, from_transition=references)
        return reply


class DaemonSide:
    """The daemon's half (``agent.remote_endpoint_actor``): ``outgoing(request)`` compacts a
    ``Transition``; ``incoming(request, reply, link)`` expands a ``TransitionReply`` or a
    ``ScanReply`` (``ValueError`` if a reference does not fit). The written entries are kept
    per link: a new link (a new agent) never inherits them."""

    def __init__(self) -> None:
        self.written: Optional[tuple[object, dict[str, Entry]]] = None

    def outgoing(self, request):
        from mutagen_actors.wire.messages import endpoint as m

        if isinstance(request, m.Transition):
            self.written = None
        if isinstance(request, m.Transition) and not request.moved and not request.old_seen:
            changes, moved = compact_transition(request.changes)
            changes, old_seen = compact_olds(changes)
            if moved or old_seen:
                return replace(request, changes=changes, moved=moved, old_seen=old_seen)
        return request

    def relayed(self) -> None:
        """A ``Transition`` goes to the agent as it came (``shallow_changes``): as
        ``outgoing`` does for any transition, forget the previous one's written entries."""
        self.written = None

    def scan_replied(self) -> None:
        """A ``ScanReply`` that refers to nothing went by undecoded (the remote endpoint actor
        relays those as they came): the written entries may not be referred to any more."""
        self.written = None

    def incoming(self, request, reply, link):
        from mutagen_actors.wire.messages import endpoint as m

        if isinstance(reply, m.TransitionReply) and isinstance(request, m.Transition):
            result = reply.result
            results = expand_results(request.changes, result.results, reply.old_as_asked,
                                     reply.as_asked)
            self.written = (link, written_entries(results))
            return replace(reply, result=replace(result, results=results), old_as_asked=False,
                           as_asked=[])
        if isinstance(reply, m.ScanReply):
            memory, self.written = self.written, None
            written = memory[1] if memory is not None and memory[0] is link else None
            if reply.from_transition:
                delta = expand_delta(reply.delta, reply.from_transition, written)
                return replace(reply, delta=delta, from_transition=[])
        return reply
