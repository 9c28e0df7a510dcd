"""Pure helpers of the sync cycle (no I/O): what to stage, how to batch a transfer, how the
ancestor moves forward.

- ``files_to_stage(changes)``: the ``(path, digest)`` of every file a side must receive content
  for to apply ``changes``: files in ``new`` that the transition will create or swap, i.e. not
  already the same file (same digest) at the same place in ``old``. A change of the executable
  bit only needs no content. Sorted by path, one item per path.
- ``take_batch(queue, sizes, max_bytes, max_items=0)``: the next ``Supply`` request of a
  transfer: items from the front of ``queue`` (``(item, offset)`` pairs) while their remaining
  sizes fit in ``max_bytes`` and (when ``max_items`` > 0) at most ``max_items`` of them; always at
  least one item; a file larger than the budget is read in pieces. Each request is
  ``supply_request(item, offset)``.
- ``supply_request(item, offset)``: raw, or a delta against ``item.signature`` (the signature
  itself on the item's first request, its fingerprint on later ones).
- ``expected_cut(batch, sizes, max_bytes)``: where the sender will cut ``batch`` when it reads
  it raw (mirrors ``agent.transfer.Supplier.supply``), so the stager can ask for the next piece
  of a large file before the previous one is acknowledged: ``(True, None)`` every request is
  read to its end; ``(True, offset)`` the last one is cut at ``offset`` (the next piece starts
  there); ``(False, None)`` unknown (a delta request, a size not known, or a cut before the last
  request: the stager then waits for the reply).
- ``next_ancestor(ancestor, ancestor_changes, alpha_results, beta_results, checked=None)``: the
  ancestor after a cycle: the reconciler's ancestor changes, then what each side *actually* has
  at each changed path (``synchronizable`` part only), validated: every entry put in (the
  previous ancestor is valid; with none, what was put in is the whole tree). A result whose
  ``new`` is the very object ``checked`` holds for its path (``checked_requests``: computed while
  the transition runs) is put in as checked there, without walking it again. Raises
  ``ValueError`` if the changes do not fit or the result is not a valid ancestor (the cycle must
  then fail without saving).
- ``checked_requests(changes)``: path -> ``(new, synchronizable(new))`` for each requested
  ``new`` whose synchronizable part is a valid ancestor entry at its path (others are left out
  and checked by ``next_ancestor`` as any result).
- ``compact_results(changes, side)`` / ``expand_results(changes, side)``: the compact form of a
  ``SideResult`` (``wire.messages.endpoint.SideResult``): results that repeat the requested
  ``old``/``new`` are sent without them (after an initial sync, the whole tree). ``compact``
  returns ``side`` itself when nothing can be left out (or the request repeats a path);
  ``same(actual, requested)`` compares an actual entry with a requested one (default: equal
  entries; the transitioner holds the requested ones encoded and compares encodings, which
  may only err towards "differs": a result then goes back whole);
  ``expand`` gives the full results, ``new`` and ``old`` being the requested objects themselves,
  and raises ``ValueError`` (a protocol error: the cycle fails, nothing is saved) for a compact
  reply that does not fit the request: more results than changes, a result for a path not
  requested or twice for one path, a reference out of range, repeated, or to a result that
  carries its own entry or whose change asked for nothing. One implementation of the form, on
  lists: ``agent.compaction`` (the agent tunnel's ``TransitionReply`` uses it as well).
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Optional

from mutagen_actors.actors.sync.apply import apply_changes, validate_ancestor
from mutagen_actors.actors.sync.chunking import fingerprint
from mutagen_actors.actors.sync.model import Change, Entry, Kind, Problem, join
from mutagen_actors.actors.sync.reconcile import synchronizable
from mutagen_actors.agent import compaction
from mutagen_actors.wire.messages.endpoint import SideResult, StageItem, SupplyRequest


def _needed(path: str, old: Optional[Entry], new: Optional[Entry], out: dict) -> None:
    if new is None:
        return
    if new.kind == Kind.FILE:
        if old is None or old.kind != Kind.FILE or old.digest != new.digest:
            out[path] = new.digest
        return
    if new.kind == Kind.DIRECTORY:
        same_kind = old is not None and old.kind == Kind.DIRECTORY
        for name, child in new.contents.items():
            _needed(join(path, name), old.contents.get(name) if same_kind else None, child, out)


def files_to_stage(changes: list[Change]) -> list[StageItem]:
    out: dict[str, bytes] = {}
    for change in changes:
        _needed(change.path, change.old, change.new, out)
    return [StageItem(path, out[path]) for path in sorted(out)]


def supply_request(item: StageItem, offset: int) -> SupplyRequest:
    """The request for ``item`` from ``offset``: raw bytes, or a delta against the receiver's
    signature (the whole signature on the first request of the item, at ``item.offset``; only
    its fingerprint on later ones, the sender keeps the signature between requests)."""
    if item.signature is None:
        return SupplyRequest(item.path, item.digest, offset)
    if offset == item.offset:
        return SupplyRequest(item.path, item.digest, offset, item.signature)
    return SupplyRequest(item.path, item.digest, offset, None, fingerprint(item.signature))


def take_batch(queue: deque, sizes: dict, max_bytes: int,
               max_items: int = 0) -> list[SupplyRequest]:
    """Pop items for one request from ``queue`` (of ``(StageItem, offset)``); ``sizes`` maps a
    path to its expected size (missing or negative: unknown, counted as one whole budget)."""
    batch: list[SupplyRequest] = []
    budget = max_bytes
    limit = max_items if max_items > 0 else len(queue)
    size_of, take, add = sizes.get, queue.popleft, batch.append  # per file: no lookups
    while queue and len(batch) < limit:
        item, offset = queue[0]
        size = size_of(item.path, -1)
        remaining = max_bytes if size < 0 else (size - offset if size > offset else 0)
        if batch and remaining > budget:
            break
        take()
        add(SupplyRequest(item.path, item.digest, offset) if item.signature is None
            else supply_request(item, offset))
        budget -= remaining
        if budget <= 0:
            break
    return batch


def expected_cut(batch: list[SupplyRequest], sizes: dict,
                 max_bytes: int) -> tuple[bool, Optional[int]]:
    budget = max(1, max_bytes)
    last = len(batch) - 1
    size_of = sizes.get
    for index, request in enumerate(batch):
        size = size_of(request.path, -1)
        if request.signature is not None or request.base or size < 0 or budget <= 0:
            return False, None
        offset = request.offset
        left = size - offset if size > offset else 0
        read = budget if budget < left else left
        budget -= read
        if offset + read < size:
            return (True, offset + read) if index == last else (False, None)
    return True, None


def _check_put(change: Change) -> None:
    """Raise ``ValueError`` unless ``change.new`` (not None) is valid ancestor content at its
    path (its name, then the whole subtree)."""
    name = change.path.rsplit("/", 1)[-1]
    validate_ancestor(Entry.directory({name: change.new}) if name else change.new)


def checked_requests(changes: list[Change]) -> dict[str, tuple[Entry, Entry]]:
    checked: dict[str, tuple[Entry, Entry]] = {}
    for change in changes:
        kept = synchronizable(change.new)
        if kept is None:
            continue
        try:
            _check_put(Change(change.path, None, kept))
        except ValueError:
            continue  # next_ancestor checks it again (and fails) if it is put in
        checked[change.path] = (change.new, kept)
    return checked


def next_ancestor(ancestor: Optional[Entry], ancestor_changes: list[Change],
                  alpha_results: list[Change], beta_results: list[Change],
                  checked: Optional[dict[str, tuple[Entry, Entry]]] = None) -> Optional[Entry]:
    changes = list(ancestor_changes)
    unchecked = [True] * len(changes)
    known = checked or {}
    for result in (*alpha_results, *beta_results):
        hit = known.get(result.path)
        if hit is not None and result.new is hit[0]:
            changes.append(Change(result.path, None, hit[1]))
            unchecked.append(False)
        else:
            changes.append(Change(result.path, None, synchronizable(result.new)))
            unchecked.append(True)
    updated = apply_changes(ancestor, changes)
    # The previous ancestor was valid (or there was none): checking what was put in is enough
    # (and keeps a cycle that changes one file from walking a 100k-entry tree).
    for change, check in zip(changes, unchecked):
        if check and change.new is not None:
            _check_put(change)
    return updated


def compact_results(changes: list, side: SideResult,
                    same: Optional[Callable[[Optional[Entry], object], bool]] = None
                    ) -> SideResult:
    if side.old_as_asked or side.as_asked or not side.results:
        return side
    results, old_as_asked, as_asked = compaction.compact_results(changes, side.results, same)
    if not old_as_asked and not as_asked:
        return side
    return SideResult(results, side.problems, side.missing_staged, old_as_asked, as_asked)


def expand_results(changes: list[Change], side: SideResult) -> list[Change]:
    return compaction.expand_results(changes, side.results, side.old_as_asked, side.as_asked)


STAGED_MISSING = "staged file missing"  # actors.sync.transition's text (not imported: its weight)


def explain_missing(transition: list[Problem], staging: list[Problem]) -> list[Problem]:
    """The transition's problems, where a file was missing because staging refused it saying
    why (``staged file missing: <the staging problem>``, e.g. above the maximum staging file
    size); the other problems as they are, in their order (pure)."""
    if not staging:
        return transition
    reasons: dict[str, str] = {}
    for problem in staging:  # the first problem of a path is the cause; later ones follow it
        reasons.setdefault(problem.path, problem.error)
    return [Problem(p.path, f"{p.error}: {reasons[p.path]}")
            if p.error == STAGED_MISSING and p.path in reasons else p for p in transition]


def run_again_at_once(missing_staged: bool, transition: list[Problem],
                      staging: list[Problem]) -> bool:
    """Whether a side's cycle should be followed by another at once: staged content was missing
    at the transition (a file changed while it was staged: the next cycle picks up the change),
    unless every missing file was one staging refused for good (above the maximum staging file
    size, unreadable on the sender): running again would only send it again, in a loop (pure)."""
    if not missing_staged:
        return False
    refused = {problem.path for problem in staging}
    missing = [p.path for p in transition if p.error == STAGED_MISSING]
    return not missing or any(path not in refused for path in missing)
