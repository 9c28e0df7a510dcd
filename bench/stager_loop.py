"""The stager's own CPU per file on the straight path (``SupplyTo``), without endpoints.

    .venv/bin/python bench/stager_loop.py [--files 100000] [--repeat 3] [--profile FILE]

Runs the real ``StagerActor.run_job`` for a ``StageStart`` of ``--files`` files (1-16 KiB, as
``bench/suite.py``'s tree, 20 per directory) plus four large files (100, 32, 32 and 8 MiB)
against two canned endpoints that answer at once: the receiver needs everything, the sender
welcomes ``supply_to`` and answers each ``SupplyTo`` with the ``ChunkInfo`` a real supplier
would send (cut where ``agent.transfer.Supplier`` cuts) and an ack of every file. Every request
and reply goes through the wire codec both ways, as between processes. Prints the CPU of the
stager's side alone (the canned endpoints' own decode / build / encode time is measured and
taken out) per run, in total and per file: what the stager actor spends in a 100k initial sync
besides its ZeroMQ sends and receives.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mutagen_actors.actors.runtime.actor import ActorContext  # noqa: E402
from mutagen_actors.actors.syncsession.stager import StagerActor  # noqa: E402
from mutagen_actors.wire import codec  # noqa: E402
from mutagen_actors.wire.messages import endpoint as m  # noqa: E402

from bench.run_support import QuietLog, run_profiled  # noqa: E402

BIG = [("big/a.bin", 100 << 20), ("big/b.bin", 32 << 20), ("big/c.bin", 32 << 20),
       ("big/d.bin", 8 << 20)]


def make_items(files: int, seed: int = 6) -> tuple[list, dict]:
    rng = random.Random(seed)
    items, sizes = [], {}
    for index in range(files):
        directory = index // 20
        path = f"t{directory // 500:02d}/d{directory % 500:03d}/f{index % 20:02d}.dat"
        items.append(m.StageItem(path, rng.randbytes(16)))
        sizes[path] = rng.randint(1024, 16384)
    for path, size in BIG:
        items.append(m.StageItem(path, rng.randbytes(16)))
        sizes[path] = size
    items.sort(key=lambda item: item.path)
    return items, sizes


def supplied(requests, max_bytes: int, sizes: dict) -> list:
    """The ``ChunkInfo`` of what ``agent.transfer.Supplier.supply`` would read (raw)."""
    infos, budget = [], max(1, max_bytes)
    for request in requests:
        if budget <= 0:
            break
        size = sizes[request.path]
        read = min(budget, max(0, size - request.offset))
        budget -= read
        infos.append(m.ChunkInfo(request.path, request.digest, request.offset, size,
                                 request.offset + read >= size, "", read, read, False))
    return infos


class CannedPeer:
    """An endpoint answering at once; ``spent`` is its own CPU (decode, reply, encode)."""

    def __init__(self, side: str, sizes: dict):
        self.side, self.sizes, self.spent = side, sizes, 0.0

    async def request(self, body, *, timeout: float):
        frame = codec.encode(body, id=1)
        started = time.thread_time()
        message = codec.decode(frame).body
        if isinstance(message, m.EndpointHello):
            reply = m.EndpointWelcome("epoch", "watching", supply_to=self.side == "alpha")
        elif isinstance(message, m.StageBegin):
            reply = m.StageNeeds(message.items)
        elif isinstance(message, m.FileSizes):
            reply = m.Sizes([self.sizes[path] for path in message.paths])
        elif isinstance(message, m.SupplyTo):
            infos = supplied(message.requests, message.max_bytes, self.sizes)
            reply = m.SuppliedTo(infos, m.StageAck(sum(1 for i in infos if i.eof), []))
        else:
            raise AssertionError(type(message).__name__)
        frame = codec.encode(reply, reply_to=1)
        self.spent += time.thread_time() - started
        await asyncio.sleep(0)
        return codec.decode(frame).body


async def one_run(items: list, sizes: dict) -> tuple[float, float, int]:
    launch = SimpleNamespace(args={"alpha": "ipc://unused-alpha", "beta": "ipc://unused-beta"})
    stager = StagerActor(ActorContext(launch=launch, log=QuietLog(), zmq_context=None))
    alpha, beta = CannedPeer("alpha", sizes), CannedPeer("beta", sizes)
    stager.peers = {"alpha": alpha, "beta": beta}
    started, wall = time.thread_time(), time.perf_counter()
    reply = await stager.run_job(m.JobReply(1, False), m.StageStart("beta", items))
    cpu = time.thread_time() - started - alpha.spent - beta.spent
    assert reply.progress.received_files == len(items), reply.progress
    return cpu, time.perf_counter() - wall, len(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", help="write a cProfile of the last run here")
    args = parser.parse_args()
    items, sizes = make_items(args.files)
    print(f"{len(items)} files, {sum(sizes.values()) / 1e6:.0f} MB; load average "
          f"{os.getloadavg()[0]:.2f}")
    for run in range(args.repeat):
        cpu, wall, count = run_profiled(lambda: asyncio.run(one_run(items, sizes)),
                                        args.profile if run == args.repeat - 1 else None)
        print(f"run {run + 1}: stager CPU {cpu:.3f} s ({cpu / count * 1e6:.1f} us/file), "
              f"wall {wall:.3f} s (canned endpoints included)")


if __name__ == "__main__":
    main()
