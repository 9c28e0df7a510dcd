"""Remote sides of a forwarder kept connected: connect, and reconnect with back-off when lost.

A forwarding session whose SSH host or container is down is not broken, it is waiting (what
Mutagen does): the forwarder keeps its local listener, and each remote side is a ``RemoteLink``
that retries with a growing pause (``backoff_delays``: 0.5 s doubling to 5 s, back to 0.5 s
after a connection held) until the remote answers again. Nothing here exits the process: a
connection failure is not a crash.

- ``RemoteLink(role, description, connect, on_up=..., on_down=...)``: ``connect()`` returns a
  connected side (``actors.forward.remote``); ``on_up(side)`` finishes setting it up (a remote
  source listens there) and may raise ``ForwardingError``, which counts as a failed attempt.
  ``await connect_once()`` makes one attempt and raises its error (the first start of a
  session, so ``create`` reports a bad host at once); ``start()`` runs the retry loop in the
  background; ``up``, ``side``, ``last_error`` and ``attempts`` are live; ``close()`` ends it.
- ``RemoteListener``: the relay's stable listener for a remote source; each connection of the
  remote's current listener (``attach``) is passed on; ``detach`` forgets it when the remote is
  lost. ``describe()`` is "" while nothing listens.
- ``remote_dialer(link, endpoint, timeout)``: the relay's dialer for a remote destination; it
  fails at once with "not connected" and the reason while the link is down.
- ``session_status(...)``: the status word ``forward list`` shows (pure).
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable, Iterator, Optional

from .dialers import DialError
from .endpoints import Endpoint
from .streams import Dialer, ListenerClosed, QueueListener

BACKOFF_INITIAL = 0.5
BACKOFF_FACTOR = 2.0
BACKOFF_CEILING = 5.0


def backoff_delays(initial: float = BACKOFF_INITIAL, factor: float = BACKOFF_FACTOR,
                   ceiling: float = BACKOFF_CEILING) -> Iterator[float]:
    """The pauses between connection attempts: ``initial``, times ``factor`` each time, capped
    at ``ceiling``, forever."""
    delay = initial
    while True:
        yield min(delay, ceiling)
        delay = min(delay * factor, ceiling)


def session_status(source_remote: bool, source_up: bool, destination_remote: bool,
                   destination_up: bool) -> str:
    """``connecting-source`` while a remote source is not connected (and listening), else
    ``connecting-destination`` while a remote destination is not connected, else
    ``forwarding``. A local side is always up."""
    if source_remote and not source_up:
        return "connecting-source"
    if destination_remote and not destination_up:
        return "connecting-destination"
    return "forwarding"


class RemoteLink:
    def __init__(self, role: str, description: str, connect: Callable[[], Awaitable[object]], *,
                 on_up: Optional[Callable[[object], Awaitable[None]]] = None,
                 on_down: Optional[Callable[[], None]] = None, log=None,
                 delays: Callable[[], Iterator[float]] = backoff_delays):
        self.role = role
        self.description = description
        self._connect = connect
        self._on_up = on_up
        self._on_down = on_down
        self.log = log
        self._delays = delays
        self.side = None
        self.up = False
        self.last_error = ""
        self.attempts = 0
        self.connections = 0  # how many times it came up
        self._task: Optional[asyncio.Task] = None
        self._closed = False

    async def connect_once(self) -> None:
        """One attempt (connect, then ``on_up``); raises its error, leaving nothing open."""
        self.attempts += 1
        side = await self._connect()
        try:
            if self._on_up is not None:
                await self._on_up(side)
        except BaseException:
            await _close(side)
            raise
        self.side, self.up, self.last_error = side, True, ""
        self.connections += 1
        if self.log is not None:
            self.log.info("remote connected", side=self.role, remote=self.description)

    def start(self) -> None:
        """Keep the link up in the background from now on."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        delays = self._delays()
        while not self._closed:
            if not self.up:
                try:
                    await self.connect_once()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - any failure: wait, then retry
                    self.last_error = _one_line(error)
                    pause = next(delays)
                    if self.log is not None:
                        self.log.warning("remote unreachable", side=self.role,
                                         remote=self.description, error=self.last_error,
                                         retry_in=pause)
                    await asyncio.sleep(pause)
                    continue
                delays = self._delays()
            side = self.side
            reason = await side.wait_lost()
            self.up, self.side = False, None
            self.last_error = reason
            if self.log is not None:
                self.log.warning("remote lost", side=self.role, remote=self.description,
                                 reason=reason)
            if self._on_down is not None:
                self._on_down()
            await _close(side)
            await asyncio.sleep(next(delays))

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        side, self.side, self.up = self.side, None, False
        if side is not None:
            await _close(side)


async def _close(side) -> None:
    """Close ``side`` within 2 s. Not ``wait_for``: on its timeout it waits for the cancelled
    close to finish, and a close stuck where cancellation is not honoured (a child process or a
    channel that never confirms) would hang the caller — a failed start among them."""
    task = asyncio.ensure_future(side.close())
    try:
        done, _ = await asyncio.wait({task}, timeout=2)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return
    if not task.cancelled():
        task.exception()  # best effort: the remote may be gone already


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


class RemoteListener(QueueListener):
    """A remote source's listener as the relay sees it: stable across reconnections."""

    def __init__(self, description: str):
        super().__init__(description)
        self._current = None
        self._pump: Optional[asyncio.Task] = None

    def attach(self, listener) -> None:
        self.detach()
        self._current = listener
        self._pump = asyncio.ensure_future(self._forward(listener))

    async def _forward(self, listener) -> None:
        while True:
            try:
                reader, writer = await listener.accept()
            except ListenerClosed:
                return
            self.deliver(reader, writer)

    def detach(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        if self._current is not None:
            self._current.close()
            self._current = None

    def close(self) -> None:
        self.detach()
        super().close()

    def describe(self) -> str:
        return self._current.describe() if self._current is not None else ""


def remote_dialer(link: RemoteLink, endpoint: Endpoint, timeout: float) -> Dialer:
    cache: dict = {}

    async def dial():
        side = link.side
        if side is None or not link.up:
            reason = link.last_error or "connecting"
            raise DialError(f"cannot connect to {endpoint} on {link.description}: not "
                            f"connected ({reason})")
        if cache.get("side") is not side:
            cache["side"], cache["dial"] = side, side.dialer(endpoint, timeout)
        return await cache["dial"]()

    return dial
