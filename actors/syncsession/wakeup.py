"""The reconciler's side of hibernation: waking the session's on-demand children (stager,
transitioner) and holding connections to them only while they are needed.

The stager and the transitioner exit by themselves after their idle delay (``ChildSpec.on_demand``;
the session supervisor keeps them ``hibernating``). ``OnDemandChildren`` gets them back:

- ``kick(*names)``: ask the daemon's wake mailbox (``WakeChild``) in the background, without
  waiting: the reconciler calls it when a cycle starts, so a start (~20-35 ms) runs while the
  endpoints scan. A failed kick is only logged (``awake`` asks again).
- ``awake(name)``: an async context manager giving the child's ``Peer`` once the child surely
  runs: it reuses an answer still inside its *lease*, else waits for a wake (its failure,
  ``RequestTimeout``/``RemoteError``/``ConnectionError``, fails the cycle like any request).
- the lease (``lease_end``): a child that answered at time *t* (a wake's ``KeepAwake``, or the
  last request of a job) stays up until at least *t* + its idle delay; we count on half of it.
  When a lease ends with no job in progress, the connection to that child is closed, before the
  child hibernates: a socket left connected to a missing mailbox retries every 50 ms.
- a wake that started a new incarnation gets a new ``Peer`` (it connects at once; the old
  socket would reconnect on its timer, up to 50 ms later).

Without a wake mailbox (``supervisor`` empty: children that never hibernate) ``kick`` does
nothing and ``awake`` gives a connection kept for the actor's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from mutagen_actors.wire.messages.actor import WakeChild

from .peer import Peer

WAKE_TIMEOUT = 15.0  # the supervisor's start deadline (10 s) plus a margin


def lease_end(contact: float, idle_exit: float) -> float:
    """Until when a child last in contact at ``contact`` runs for sure without a new wake: half
    its idle delay later (margin for a slow loop); forever for a child that never hibernates
    (``idle_exit`` <= 0)."""
    return math.inf if idle_exit <= 0 else contact + idle_exit / 2


class OnDemandChildren:
    def __init__(self, zmq_context, session: str, mailboxes: dict, supervisor: str, log):
        self._context = zmq_context
        self._session = session
        self._mailboxes = dict(mailboxes)  # child name -> mailbox address
        self._log = log
        loop = asyncio.get_running_loop()
        self._clock = loop.time
        self._supervisor = Peer(zmq_context, supervisor, "daemon wake mailbox", log) \
            if supervisor else None
        self._peers: dict[str, Peer] = {}
        self._until = {name: math.inf if not supervisor else 0.0 for name in mailboxes}
        self._idle_exit = {name: 0.0 for name in mailboxes}
        self._in_use = {name: 0 for name in mailboxes}
        self._kicks: dict[str, asyncio.Task] = {}
        self._releases: dict[str, asyncio.TimerHandle] = {}
        self._closing: set = set()

    def _fresh(self, name: str) -> bool:
        return self._clock() < self._until[name]

    # ------------------------------------------------------------------ waking

    def kick(self, *names: str) -> None:
        """Wake ``names`` in the background (nothing to do if a lease or a wake is running)."""
        if self._supervisor is None:
            return
        for name in names:
            kick = self._kicks.get(name)
            if self._fresh(name) or (kick is not None and not kick.done()):
                continue
            task = asyncio.get_running_loop().create_task(self._wake(name))
            task.add_done_callback(self._kicked)
            self._kicks[name] = task

    def _kicked(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._log.info("early wake failed", error=str(task.exception()))

    async def _wake(self, name: str) -> None:
        sent = self._clock()
        reply = await self._supervisor.request(WakeChild(self._session, name, WAKE_TIMEOUT),
                                               timeout=WAKE_TIMEOUT + 1.0)
        self._idle_exit[name] = reply.idle_exit
        self._until[name] = lease_end(sent, reply.idle_exit)
        if reply.started and name in self._peers and not self._in_use[name]:
            self._close_peer(name)  # a new incarnation: connect a new socket at once
        self._schedule_release(name)

    @contextlib.asynccontextmanager
    async def awake(self, name: str):
        """The child's ``Peer``, once it runs; keeps the connection while the block runs."""
        kick = self._kicks.pop(name, None)
        if kick is not None:
            await asyncio.gather(kick, return_exceptions=True)
        if not self._fresh(name):
            await self._wake(name)
        peer = self._peers.get(name)
        if peer is None:
            peer = self._peers[name] = Peer(self._context, self._mailboxes[name], name, self._log)
        self._in_use[name] += 1
        try:
            yield peer
        except BaseException:
            if self._supervisor is not None:
                self._until[name] = 0.0  # it may have died: wake it next time
            raise
        else:
            # It just answered a request: up for its idle delay from now.
            self._until[name] = max(self._until[name],
                                    lease_end(self._clock(), self._idle_exit[name]))
        finally:
            self._in_use[name] -= 1
            self._schedule_release(name)

    # ------------------------------------------------------------------ connections

    def _schedule_release(self, name: str) -> None:
        handle = self._releases.pop(name, None)
        if handle is not None:
            handle.cancel()
        if self._supervisor is None or self._in_use[name] or name not in self._peers:
            return
        until = self._until[name]
        if until != math.inf:
            self._releases[name] = asyncio.get_running_loop().call_at(until, self._release, name)

    def _release(self, name: str) -> None:
        self._releases.pop(name, None)
        if self._in_use[name] or name not in self._peers:
            return
        if self._until[name] > self._clock() + 0.01:  # extended since this was scheduled
            self._schedule_release(name)
            return
        self._close_peer(name)

    def _close_peer(self, name: str) -> None:
        peer = self._peers.pop(name)
        task = asyncio.get_running_loop().create_task(peer.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for handle in self._releases.values():
            handle.cancel()
        tasks = [t for t in self._kicks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._closing, return_exceptions=True)
        for peer in [*self._peers.values(), self._supervisor]:
            if peer is not None:
                await peer.aclose()
        self._peers.clear()
