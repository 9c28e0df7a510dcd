"""Test harness for the staging pipeline: the real stager (``StagerActor.run_job``) driving two
real ``LocalEndpoint``s over real files, every request and reply going through the wire codec
(``WirePeer``), so tests can count the bytes that would cross the wire and damage a reply in
transit. No actor processes: what is exercised is the stager's flow and the endpoints' staging
code, exactly as the actors run them."""

from __future__ import annotations

import asyncio
import os
from typing import Callable, Optional

from mutagen_actors.actors.runtime.actor import ActorContext
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.settings import HashAlgorithm, WatchMode
from mutagen_actors.actors.syncsession.stager import StagerActor
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.agent.serve_endpoint import answer_endpoint
from mutagen_actors.wire import codec
from mutagen_actors.wire.messages import endpoint as m


def digest(data: bytes) -> bytes:
    return digest_bytes(data, HashAlgorithm.XXH128)


def make_endpoint(root: str, data: str, side: str) -> LocalEndpoint:
    os.makedirs(root, exist_ok=True)
    return LocalEndpoint(EndpointSettings(root=root, session="sync_delta", side=side,
                                          data_directory=data, watch_mode=WatchMode.NO_WATCH))


class WirePeer:
    """A ``Peer`` that answers with ``endpoint`` through the wire codec; counts frame bytes per
    message type; ``damage(reply)`` may return a changed reply (damage in transit); ``stop_after``
    cuts the connection (``ConnectionError``) once that many ``Supply`` requests were answered."""

    def __init__(self, endpoint: LocalEndpoint, side: str):
        self.endpoint = endpoint
        self.side = side
        self.bytes: dict[str, int] = {}
        self.damage: Optional[Callable] = None
        self.stop_after: Optional[int] = None
        self.supplies = 0
        self._lock = asyncio.Lock()  # an endpoint answers one request at a time

    def _count(self, name: str, frame: bytes) -> None:
        self.bytes[name] = self.bytes.get(name, 0) + len(frame)

    async def request(self, body, *, timeout: float):
        if isinstance(body, m.Supply):
            if self.stop_after is not None and self.supplies >= self.stop_after:
                raise ConnectionError(f"the {self.side} endpoint went away")
            self.supplies += 1
        frame = codec.encode(body, id=1)
        self._count(type(body).__name__, frame)

        async def answer():
            async with self._lock:
                return await answer_endpoint(self.endpoint, self.side, codec.decode(frame).body)

        # As with a real endpoint, a request the requester gives up on is still carried out.
        reply = await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(answer())), timeout)
        if self.damage is not None:
            reply = self.damage(reply)
        frame = codec.encode(reply, reply_to=1)
        self._count(type(reply).__name__, frame)
        return codec.decode(frame).body


class Log:
    """Records the stager's log events (event name -> fields of the last one)."""

    def __init__(self):
        self.events: dict[str, dict] = {}

    def _record(self, event, **fields):
        self.events[event] = fields

    info = debug = warning = error = _record

    def exception(self, event, **fields):
        self.events[event] = fields

    def bind(self, **_fields):
        return self


class Pair:
    """A sender (alpha) and a receiver (beta), started; ``stage(items)`` scans both and runs one
    stager pass towards beta; returns the log fields of its ``staging done`` event."""

    def __init__(self, base: str):
        data = os.path.join(base, "data")
        self.alpha = make_endpoint(os.path.join(base, "alpha"), data, "alpha")
        self.beta = make_endpoint(os.path.join(base, "beta"), data, "beta")
        self.sender = WirePeer(self.alpha, "alpha")
        self.receiver = WirePeer(self.beta, "beta")
        self.loop = asyncio.new_event_loop()  # the endpoints' tasks live in one loop

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def start(self) -> None:
        self.run(self.alpha.start())
        self.run(self.beta.start())

    def stop(self) -> None:
        try:
            self.run(self.alpha.stop())
            self.run(self.beta.stop())
            self.run(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    async def stage(self, items: list) -> dict:
        # A cycle scans both sides before it stages (the scans fill the digest caches the
        # endpoints consult for sizes and delta bases).
        await self.alpha.scan_async(True)
        await self.beta.scan_async(True)
        log = Log()
        stager = StagerActor(ActorContext(launch=self.stager_launch(), log=log, zmq_context=None))
        stager.peers = {"alpha": self.sender, "beta": self.receiver}
        reply = await stager.run_job(m.JobReply(1, False), m.StageStart("beta", items))
        done = dict(log.events.get("staging done", {}))
        done["progress"] = reply.progress
        done["problems"] = log.events.get("staging problems")
        done["reply"] = reply
        return done

    def stager_launch(self):
        """The stager's launch record (its arguments); none needed when content goes through it."""
        return None

    def staged(self, content: bytes) -> Optional[bytes]:
        staging = self.beta.staging
        path = staging.path_for(digest(content))
        try:
            with open(path, "rb") as stream:
                return stream.read()
        except FileNotFoundError:
            pass
        # A whole small file is placed at its own path in the store's tree (agent.transfer).
        for parent, _dirs, names in os.walk(staging.tree_directory):
            for name in names:
                with open(os.path.join(parent, name), "rb") as stream:
                    data = stream.read()
                if data == content:
                    return data
        return None

    def wire_content_bytes(self) -> int:
        """Bytes of the replies that carry content (``Supplied``) plus the requests for it."""
        return self.sender.bytes.get("Supplied", 0) + self.sender.bytes.get("Supply", 0)


def write_file(root: str, relative: str, content: bytes) -> None:
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as stream:
        stream.write(content)
