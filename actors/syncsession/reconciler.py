"""The reconciler actor: drives one session's sync cycles, owns the ancestor and the state.

The cycle runs in a task, never in the message handler, so ``GetSessionState`` and the other
requests are answered at once whatever the cycle is doing. Loop:

1. connect: ``EndpointHello`` to alpha and to beta at the same time, each until it answers
   (``connecting-alpha`` / ``connecting-beta``: the first side not yet connected; a refusal
   ``unreachable``, a failed connect attempt of a remote side, is that side's
   ``connect_error`` until it connects, which ``sync create`` refuses with); a side's scan
   of the first cycle starts as soon as that side answered (a local root is scanned while the
   SSH link of the other side is still being set up);
2. unless both sides are ``no-watch``, run a cycle at once; then wait (``watching``) for an
   ``EndpointChanged`` notification, a flush, or a cleared halt;
3. a cycle: scan both sides in parallel (full at start, after a failure or a halt; a flush asks
   for a "fresh" scan: incremental behind a watcher barrier where watching is native, else
   full; see docs/architecture.md) -> phantom
   reification -> root-emptied check -> reconcile (publishes conflicts) -> root deletion / type
   change checks -> staging on alpha, then on beta (``stager`` jobs, progress published) ->
   transition on both sides (``transitioner`` job) -> new ancestor = ancestor changes + each
   side's *actual* results, validated, saved atomically (``archive``; in a worker thread, awaited
   before the next transition) -> publish. Staged content
   missing (a concurrent change) runs one more cycle at once.
4. a safety check that fails sets the halted status; no cycle runs until ``ClearHalt``
   (``sync resume``), which re-runs the checks.
5. any failed request (timeout, an actor went away, a stale endpoint) fails the cycle: nothing is
   saved, ``last_error`` is set, and after ``RETRY_DELAY`` the loop reconnects and runs a full
   cycle. The ancestor is loaded at start and saved only after a transition, so a restarted
   reconciler simply starts over.

Flushes: ``SessionFlush`` answers a ticket; ``flush_completed`` / ``flush_failed`` in the state
say when the cycle that started after the ticket ended (the daemon waits on them).

Arguments: ``session``, ``data_directory``, ``mode``, mailboxes ``alpha``, ``beta``, ``stager``,
``transitioner``, ``supervisor`` (the daemon's wake mailbox: the stager and the transitioner
hibernate when idle and are woken through it, see ``wakeup``: as soon as an incremental scan
reports a change, else once reconcile found changes), ``no_watch`` (true when both sides are
no-watch) and ``phantoms`` (docker ignore syntax: phantom directories may appear and are
reified).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from typing import Callable, Optional

import msgspec

from mutagen_actors.actors.runtime.actor import Actor
from mutagen_actors.actors.sync.apply import apply_changes
from mutagen_actors.actors.sync.model import Entry
from mutagen_actors.actors.sync.phantom import has_phantoms, reify
from mutagen_actors.actors.sync.reconcile import reconcile
from mutagen_actors.actors.sync.safety import check_root_changes, check_root_emptied
from mutagen_actors.actors.sync.settings import Mode
from mutagen_actors.actors.sync.sharing import share
from mutagen_actors.agent.memory import trim
from mutagen_actors.actors.runtime import heap
from mutagen_actors.wire.errors import RemoteError, RequestTimeout
from mutagen_actors.wire.handling import NotHandled, Refused
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.sync import STATUS_DESCRIPTIONS, EndpointState, EndpointUrl
from mutagen_actors.wire.sockets import received_bytes

from . import archive
from .archive import ArchiveError
from .peer import Peer
from .plan import (checked_requests, expand_results, explain_missing, files_to_stage,
                   next_ancestor, run_again_at_once)
from .wakeup import OnDemandChildren

SIDES = ("alpha", "beta")
JOB_CHILDREN = ("stager", "transitioner")  # on demand: hibernate when idle
HELLO_TIMEOUT = 2.0
SCAN_TIMEOUT = 900.0
JOB_START_TIMEOUT = 10.0
JOB_POLL = 0.25
RETRY_DELAY = 1.0
HALTED = ("halted-on-root-emptied", "halted-on-root-deletion", "halted-on-root-type-change")
REPACK_AFTER = 2 << 20  # bytes of replies decoded since the last repack that make one worth it
_tree_encoder = msgspec.msgpack.Encoder()
_tree_decoder = msgspec.msgpack.Decoder(Entry)


class CycleFailed(Exception):
    pass


class ReconcilerActor(Actor):
    async def on_start(self) -> None:
        args = self.context.args
        context = self.context.zmq_context
        self.session = args["session"]
        self.mode = Mode(args.get("mode") or Mode.TWO_WAY_SAFE.value)
        self.no_watch = bool(args.get("no_watch"))
        self.phantoms = bool(args.get("phantoms", True))  # docker ignore syntax only
        self.archive_file = archive.archive_path(args["data_directory"], self.session)
        self.ancestor: Optional[Entry] = archive.load(self.archive_file)  # ArchiveError: no start
        self.peers = {side: Peer(context, args[side], f"{side} endpoint", self.log)
                      for side in SIDES}
        self.on_demand = OnDemandChildren(context, self.session,
                                          {name: args[name] for name in JOB_CHILDREN},
                                          args.get("supervisor", ""), self.log)
        self.status = "connecting-alpha"
        self.revision = 1
        self.successful_cycles = 0
        self.last_error = ""
        self.conflicts: list = []
        self.sides = {side: EndpointState(url=EndpointUrl()) for side in SIDES}
        self.snapshots: dict[str, tuple[str, int, Optional[Entry]]] = {}
        self.epochs: dict[str, str] = {}
        self.flush_numbers = itertools.count(1)
        self.flush_requested = 0
        self.flush_completed = 0
        self.flush_failed = 0
        self.flush_error = ""
        self.full_requested = True
        self.wake = asyncio.Event()
        self._saving: Optional[asyncio.Task] = None
        self._connecting: dict[str, asyncio.Task] = {}  # per side: its hello (``_connect``)
        self._repacked_at = received_bytes()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def on_stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self._stop_connecting()
        try:
            await self._settle_archive()
        except CycleFailed as error:
            self.log.error("archive not saved", error=str(error))
        for peer in self.peers.values():
            await peer.aclose()
        await self.on_demand.aclose()

    # ------------------------------------------------------------------ requests

    async def handle(self, message):
        if isinstance(message, m.EndpointChanged):
            self.wake.set()
            return None
        if isinstance(message, m.GetSessionState):
            return m.SessionProgress(
                self.status, self.revision, self.successful_cycles, self.last_error,
                list(self.conflicts), self.sides["alpha"], self.sides["beta"],
                self.flush_completed, self.flush_failed, self.flush_error)
        if isinstance(message, m.SessionFlush):
            if self.status in HALTED:
                raise Refused("halted", f"session is halted ({STATUS_DESCRIPTIONS[self.status]});"
                                        " resume it first")
            self.flush_requested = next(self.flush_numbers)
            self.wake.set()  # the cycle scans "fresh": see _cycle
            return m.FlushTicket(self.flush_requested)
        if isinstance(message, m.ClearHalt):
            if self.status in HALTED:
                self._set(status="watching")
                self.full_requested = True
                self.wake.set()
            return None
        raise NotHandled

    def _set(self, **changes) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.revision += 1

    def _set_side(self, side: str, **changes) -> None:
        self.sides[side] = msgspec.structs.replace(self.sides[side], **changes)
        self.revision += 1

    # ------------------------------------------------------------------ loop

    async def _run(self) -> None:
        self._connect()
        pending = not self.no_watch
        if not pending:  # no cycle before a flush: say "watching" only once both answered
            for side in SIDES:
                await self._connected(side)
        while True:
            if not pending:
                if self.status not in HALTED:
                    self._set(status="watching")
                if received_bytes() - self._repacked_at > REPACK_AFTER:
                    await self._repack()
                await self.wake.wait()
            pending = False
            self.wake.clear()
            if self.status in HALTED:
                continue
            ticket = self.flush_requested
            full, self.full_requested = self.full_requested, False
            fresh = ticket > self.flush_completed  # this cycle answers a flush
            try:
                again = await self._cycle(full, fresh)
            except (CycleFailed, RequestTimeout, RemoteError, ConnectionError, OSError,
                    ValueError, ArchiveError) as error:
                text = str(error) or type(error).__name__
                self.log.warning("cycle failed", error=text)
                self._set(last_error=text)
                if ticket > self.flush_completed:
                    self._set(flush_failed=ticket, flush_error=text)
                self.full_requested = True
                if self.status not in HALTED:
                    self._set(status="waiting-for-rescan")
                await asyncio.sleep(RETRY_DELAY)  # back-off before reconnecting
                await self._stop_connecting()
                self._connect()
                pending = True
                continue
            if self.status in HALTED:
                if ticket > self.flush_completed:
                    self._set(flush_failed=ticket, flush_error=STATUS_DESCRIPTIONS[self.status])
                continue
            self._set(successful_cycles=self.successful_cycles + 1, last_error="",
                      flush_completed=max(self.flush_completed, ticket))
            pending = again or self.wake.is_set()

    def _connect(self) -> None:
        """Start saying hello to both sides at once (one task per side, owned here: cancelled
        by ``_stop_connecting``); ``_scan`` waits for its own side's."""
        loop = asyncio.get_running_loop()
        self._connecting = {side: loop.create_task(self._connect_side(side)) for side in SIDES}
        self._set(status=f"connecting-{SIDES[0]}")

    async def _stop_connecting(self) -> None:
        tasks = [task for task in self._connecting.values() if not task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _connect_side(self, side: str) -> None:
        """``EndpointHello`` to ``side`` until it answers (each try bounded by HELLO_TIMEOUT)."""
        while True:
            try:
                welcome = await self.peers[side].request(m.EndpointHello(),
                                                         timeout=HELLO_TIMEOUT)
                break
            except (RequestTimeout, RemoteError, ConnectionError) as error:
                failed = isinstance(error, RemoteError) and error.code == "unreachable"
                self._set_side(side, connected=False, **(
                    {"connect_error": error.message} if failed else {}))
                if isinstance(error, RemoteError) and error.message != self.last_error:
                    self._set(last_error=error.message)  # a remote link says why
                self.log.info("endpoint not answering yet", side=side, error=str(error))
        self.epochs[side] = welcome.epoch
        self._set_side(side, connected=True, watch_state=welcome.watch_state, connect_error="")
        waiting = [other for other in SIDES if other != side and not self._connecting[other].done()]
        self._set(status=f"connecting-{waiting[0]}" if waiting else "scanning")

    async def _connected(self, side: str) -> None:
        """Wait for ``side``'s hello (its task outlives a cancelled cycle: shielded)."""
        task = self._connecting[side]
        if not task.done():
            await asyncio.shield(task)
        task.result()  # a hello that failed otherwise fails the cycle

    async def _scan(self, side: str, full: bool, fresh: bool) -> tuple[str, Optional[Entry]]:
        await self._connected(side)
        epoch, generation, root = self.snapshots.get(side, ("", 0, None))
        reply = await self.peers[side].request(m.Scan(full, generation, epoch, fresh),
                                               timeout=SCAN_TIMEOUT)
        if reply.changed:
            root = apply_changes(root, reply.delta) if reply.delta is not None else reply.root
            if not full:  # likely work: wake them while the other side may still scan
                self.on_demand.kick(*JOB_CHILDREN)
        self.snapshots[side] = (reply.epoch, reply.generation, root)
        counts = reply.counts
        self._set_side(side, connected=True, scanned=True, directories=counts.directories,
                       files=counts.files, symbolic_links=counts.symbolic_links,
                       total_file_size=counts.total_file_size, scan_problems=reply.problems,
                       watch_state=reply.watch_state)
        return reply.epoch, root

    async def _job(self, peer_name: str, start, side: str = "",
                   meanwhile: Optional[Callable[[], None]] = None) -> m.JobReply:
        """Run a job on ``peer_name`` to its end. ``start``: its start message, or a one-item
        list holding it, emptied once it is sent: then nothing here keeps a big message (the
        staging list of an initial sync: 100k items, ~13 MB) while the job runs.
        ``meanwhile``: work of this actor called once the job has started (it runs while the
        job does, before the first poll)."""
        async with self.on_demand.awake(peer_name) as peer:  # wakes it if it hibernates
            message = start.pop() if isinstance(start, list) else start
            del start
            started = await peer.request(message, timeout=JOB_START_TIMEOUT)
            del message
            if meanwhile is not None:
                meanwhile()
            while True:
                reply = await peer.request(m.JobStatus(started.job, JOB_POLL),
                                           timeout=JOB_POLL + JOB_START_TIMEOUT)
                if side and reply.progress is not None:
                    self._set_side(side, staging_progress=reply.progress)
                if reply.done:
                    if reply.error:
                        raise CycleFailed(f"{peer_name}: {reply.error}")
                    return reply

    async def _cycle(self, full: bool, fresh: bool = False) -> bool:
        """One cycle; True if another should run at once (staged content was missing, and not
        because staging refused it: ``run_again_at_once``).
        ``full``: both sides walk their whole root (first cycle, after a failure or a halt).
        ``fresh`` (a flush): each side's snapshot must hold every change made before the scan
        request; a natively watching side drains its watcher and scans only the dirty paths,
        others scan in full (``Scan.fresh``)."""
        clock = asyncio.get_running_loop().time
        times = {"start": clock()}
        if all(task.done() for task in self._connecting.values()):
            self._set(status="scanning")  # else the last hello sets it (``_connect_side``)
        (alpha_epoch, alpha), (beta_epoch, beta) = await asyncio.gather(
            self._scan("alpha", full, fresh), self._scan("beta", full, fresh))
        times["scanned"] = clock()
        ancestor = self.ancestor
        if self.phantoms and (has_phantoms(alpha) or has_phantoms(beta)):
            alpha, beta = reify(ancestor, alpha, beta)
        halt = check_root_emptied(ancestor, alpha, beta)
        if halt is not None:
            self._halt(halt.value)
            return False
        self._set(status="reconciling")
        result = reconcile(ancestor, alpha, beta, self.mode)
        self._set(conflicts=result.conflicts)
        halt = check_root_changes(result)
        if halt is not None:
            self._halt(halt.value)
            return False
        times["reconciled"] = clock()
        results = {"alpha": m.SideResult(), "beta": m.SideResult()}
        changes = {"alpha": result.alpha_changes, "beta": result.beta_changes}
        refused = {side: [] for side in SIDES}  # staging problems: why a file will be missing
        actual: dict[str, list] = {side: [] for side in SIDES}  # each side's expanded results
        checked: Optional[dict] = None  # requested entries checked during the transition
        if changes["alpha"] or changes["beta"]:
            self.on_demand.kick(*JOB_CHILDREN)  # (nothing to do if already awake)
            for side in SIDES:
                items = files_to_stage(changes[side])
                if items:
                    self._set(status=f"staging-{side}")
                    start, items = [m.StageStart(side, items)], None  # _job lets go of it
                    try:
                        staged = await self._job("stager", start, side)
                    finally:
                        self._set_side(side, staging_progress=None)
                    self._set_side(side, last_staging=staged.progress)  # its final numbers
                    refused[side] = staged.problems
            times["staged"] = clock()
            await self._settle_archive()  # never transition past an unsaved ancestor
            self._set(status="transitioning")
            # While the endpoints work: the requested entries, checked as the ancestor's
            # (results as requested are then put in without walking them again).
            checked = {}
            reply = await self._job("transitioner", m.TransitionStart(
                alpha_epoch, beta_epoch, changes["alpha"], changes["beta"]),
                meanwhile=lambda: [checked.update(checked_requests(changes[side]))
                                   for side in SIDES])
            results = {"alpha": reply.alpha, "beta": reply.beta}
            for side in SIDES:
                if results[side] is None:
                    raise CycleFailed(f"transitioner: protocol error: no {side} result")
                try:  # the compact form (transitioner.py): the requested objects themselves
                    actual[side] = expand_results(changes[side], results[side])
                except ValueError as error:
                    raise CycleFailed(f"transitioner: protocol error: {side}: {error}") from None
            for side in SIDES:
                self._set_side(side, transition_problems=explain_missing(results[side].problems,
                                                                         refused[side]))
            times["transitioned"] = clock()
            if len(changes["alpha"]) + len(changes["beta"]) > 100:
                trim()
        updated = next_ancestor(ancestor, result.ancestor_changes, actual["alpha"],
                                actual["beta"], checked)
        if updated is not ancestor:
            updated = self._keep_scanned_objects(updated, alpha, beta)
        if updated != ancestor:
            self._set(status="saving")
            self.ancestor = updated
            self._save_later()
        self._share_structure()
        times["recorded"] = clock()
        self.log.debug("cycle done", full=full, **{f"{k}_ms": round((v - times["start"]) * 1000, 1)
                                                   for k, v in times.items() if k != "start"})
        return any(run_again_at_once(results[side].missing_staged, results[side].problems,
                                     refused[side]) for side in SIDES)

    @staticmethod
    def _keep_scanned_objects(updated: Optional[Entry], alpha: Optional[Entry],
                              beta: Optional[Entry]) -> Optional[Entry]:
        """The new ancestor with its subtrees equal to this cycle's snapshots replaced by the
        snapshots' objects (``sharing.share``; values unchanged). The transition results come
        decoded from the transitioner: a second copy of everything that was synchronized (the
        whole tree after an initial sync). Keeping the snapshots' objects frees that copy at
        once, in the arenas it was just decoded into, instead of keeping it and freeing the
        older snapshot objects scattered through the heap (which stayed resident as
        fragmentation)."""
        shared = share(updated, beta)
        if shared is updated:  # not wholly beta's: alpha's objects where equal (they win)
            shared = share(updated, alpha)
        return shared

    async def _repack(self) -> None:
        """Move the trees this actor keeps (the ancestor, the snapshots) into compact memory
        once the session is idle after big replies (``REPACK_AFTER`` bytes since the last time).

        Why: a 100k-entry reply decodes into ~14 MB of small objects, freed again once the cycle
        is done (the transition results, a scan delta of everything just written, the staging
        list), while long-lived small objects allocated meanwhile pin the 1 MiB arenas they
        share: ~11 MB of free pools stayed resident here after an initial sync. Freeing the
        kept trees *first* (their arenas, filled in one go by the first scan's decode, are then
        returned to the system) and decoding them again afterwards puts them into those free
        pools. Values are unchanged (encode/decode round trip of each distinct root) and the
        snapshots share the ancestor's objects again (``sharing.share``). Synchronous (~0.1 s
        for 100k entries); waits for an archive save in flight (which holds the ancestor)."""
        if self._saving is not None and not self._saving.done():
            await asyncio.wait({self._saving})  # its outcome is _settle_archive's business
        # End this step of the task first: a cycle that ran to its end without suspending
        # after its scans is still inside the event loop's wake-up call for the scans' gather,
        # which holds that gather and its results (each side's snapshot root) until the step
        # ends. Measured: without this the old tree outlived the repack (two trees for a while).
        await asyncio.sleep(0)
        self._repacked_at = received_bytes()
        held = [self.ancestor] + [root for (_, _, root) in self.snapshots.values()]
        distinct: list[Entry] = []
        for root in held:
            if root is not None and not any(root is other for other in distinct):
                distinct.append(root)
        if not distinct:
            return
        started, rss_before = asyncio.get_running_loop().time(), heap.resident()
        where = [None if root is None else
                 next(i for i, other in enumerate(distinct) if other is root) for root in held]
        blobs = [_tree_encoder.encode(root) for root in distinct]
        count = len(blobs)
        names = [(side, epoch, generation)
                 for side, (epoch, generation, _) in self.snapshots.items()]
        self.ancestor = None
        self.snapshots = {}
        del held, distinct, root
        # Whatever else still refers to the old trees through reference cycles (e.g. the
        # finished gather of this cycle's scans) lets go now, before anything is decoded.
        gc.collect()
        trees: list[Entry] = []
        for blob in blobs:  # the old trees are gone: their memory is free for these
            tree = _tree_decoder.decode(blob)
            trees.append(share(tree, trees[0]) if trees else tree)
        del blobs
        self.ancestor = None if where[0] is None else trees[where[0]]
        self.snapshots = {side: (epoch, generation, None if index is None else trees[index])
                          for (side, epoch, generation), index in zip(names, where[1:])}
        del trees
        heap.tidy()
        self.log.info("trees repacked", trees=count,
                      ms=round((asyncio.get_running_loop().time() - started) * 1000, 1),
                      rss_before=rss_before, rss_after=heap.resident())

    def _share_structure(self) -> None:
        """Make the stored snapshots and the ancestor share objects where they are equal, so the
        next cycle's comparisons of unchanged subtrees stop at identity instead of walking 100k
        entries (``==`` on entries is deep; dict comparison short-circuits on identity). The first
        comparison after a full snapshot is deep once; later ones only walk what changed.
        Subtrees are shared too (``actors.sync.sharing``): a side that differs from the ancestor
        somewhere (an ignored file, a problem, a conflict) still holds one copy of the rest."""
        for side in SIDES:
            epoch, generation, root = self.snapshots.get(side, ("", 0, None))
            if root is not None and root is not self.ancestor:
                self.snapshots[side] = (epoch, generation, share(root, self.ancestor))

    def _save_later(self) -> None:
        """Write the ancestor in a worker thread while the loop goes on; the next transition
        (and stopping) waits for it, so at most the last cycle's result is unsaved at a crash, as
        with a synchronous save (the sides then agree and the next cycle records it)."""
        self._saving = asyncio.get_running_loop().create_task(
            asyncio.to_thread(archive.save, self.archive_file, self.ancestor))

    async def _settle_archive(self) -> None:
        task, self._saving = self._saving, None
        if task is None:
            return
        try:
            await task
        except OSError as error:
            self._save_later()  # try again with the current ancestor; this cycle fails
            raise CycleFailed(f"unable to save the archive: {error}") from None

    def _halt(self, status: str) -> None:
        self.log.warning("session halted by a safety check", status=status)
        self._set(status=status)
