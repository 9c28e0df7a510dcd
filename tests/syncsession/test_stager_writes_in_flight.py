"""The stager keeps ``stager.WRITES_IN_FLIGHT`` ``StageChunks`` writes in flight, the real
stager driving two real endpoints through the wire codec: the receiver gets the next batches
while it writes one, never more; and a file refetched whole while its next piece is already
on its way is staged exactly, with no problem reported for the void piece."""

from __future__ import annotations

import asyncio
import random

import pytest

from mutagen_actors.actors.sync.delta import Literal
from mutagen_actors.actors.syncsession import stager
from mutagen_actors.wire.messages import endpoint as m

from .pipeline import Pair, WirePeer, digest, write_file

MIB = 1 << 20


def noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


class SlowWrites(WirePeer):
    """A receiver whose writes take a while; records the most writes in flight at once."""

    def __init__(self, endpoint, side):
        super().__init__(endpoint, side)
        self.in_flight = 0
        self.most = 0
        self.offsets: list[int] = []  # of every chunk written, in order

    async def request(self, body, *, timeout: float):
        if not isinstance(body, m.StageChunks):
            return await super().request(body, timeout=timeout)
        self.offsets.extend(chunk.offset for chunk in body.chunks)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.05)
            return await super().request(body, timeout=timeout)
        finally:
            self.in_flight -= 1


@pytest.fixture
def pair(tmp_path):
    pair = Pair(str(tmp_path))
    pair.receiver = SlowWrites(pair.beta, "beta")
    pair.start()
    yield pair
    pair.stop()


def test_writes_in_flight_reach_the_bound_and_never_more(pair):
    files = {f"f{i}.bin": noise(300_000, i) for i in range(36)}  # ~10 MiB: more batches than fit
    for name, content in files.items():
        write_file(pair.alpha.root, name, content)
    done = pair.run(pair.stage([m.StageItem(name, digest(c)) for name, c in files.items()]))
    assert pair.receiver.most == stager.WRITES_IN_FLIGHT
    assert all(pair.staged(content) == content for content in files.values())
    assert done["progress"].received_files == len(files)
    assert done["problems"] is None


def test_a_refetch_voids_the_piece_already_sent_without_a_problem(pair):
    size = 8 * MIB
    base = noise(size, 6)
    new = base[:2 * MIB] + noise(3 * MIB, 7) + base[5 * MIB:]  # literals over several pieces
    write_file(pair.beta.root, "big.bin", base)
    write_file(pair.alpha.root, "big.bin", new)
    damaged = []

    def first_literal(reply):
        if damaged or not isinstance(reply, m.Supplied):
            return reply
        for chunk in reply.chunks:
            for index, op in enumerate(chunk.delta or ()):
                if isinstance(op, Literal) and op.data:
                    chunk.delta[index] = Literal(bytes([op.data[0] ^ 1]) + op.data[1:], op.digest)
                    damaged.append(chunk.offset)
                    return reply
        return reply

    pair.sender.damage = first_literal
    done = pair.run(pair.stage([m.StageItem("big.bin", digest(new))]))
    assert damaged
    offsets = pair.receiver.offsets
    restart = offsets.index(0, 1)  # the whole refetch
    assert max(offsets[:restart]) > damaged[0]  # a later piece had been sent already
    assert pair.staged(new) == new
    assert done["refetched"] == 1
    # the damaged piece is this cycle's one problem; the void piece's refusal is not reported
    assert done["problems"]["count"] == 1
    assert "corrupted" in done["problems"]["first"]
    assert done["progress"].received_files == 1


@pytest.mark.parametrize("actor", ["agent.endpoint_actor.EndpointActor",
                                   "agent.remote_endpoint_actor.RemoteEndpointActor"])
def test_the_endpoint_actors_run_as_many_writes_at_once_as_the_stager_sends(actor):
    # A smaller bound in the sender (SupplyTo) or in a remote receiver's relay (StageChunks)
    # would silently cap the stager's window: the pipeline then idles between batches.
    import importlib
    module, _, name = actor.rpartition(".")
    cls = getattr(importlib.import_module(f"mutagen_actors.{module}"), name)
    assert cls.MAX_CONCURRENT == stager.WRITES_IN_FLIGHT
