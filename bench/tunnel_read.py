"""The agent tunnel's input path alone: how much CPU the reading side spends per GB.

    .venv/bin/python bench/tunnel_read.py [--megabytes 512] [--repeat 3] [--piece 32768]
                                          [--rate MB/s]

A writer thread pushes ``--megabytes`` of DATA frames (1 MiB codec-sized payloads, as the
relayed ``StageChunks``) into a pipe in ``--piece``-byte writes (what sshd hands the agent per
SSH packet); the reading side is a ``wire.tunnel.Tunnel`` whose ``on_data`` only counts, read
through an asyncio ``StreamReader`` on the pipe (the agent before), ``wire.tunnel.PipeReader``
on the loop's pipe transport (the agent now) or non-blocking reads straight on the descriptor
(``fd``: measured, not kept), with the agent's allocator set-up (``agent.memory``: two arenas, fixed 4 MiB
thresholds). Prints the reading thread's CPU seconds (``time.thread_time``) per run: the
cost of the pipe reads, the frame decoding and the tunnel's dispatch, without the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mutagen_actors.agent.memory import keep_trimmable, limit_arenas  # noqa: E402
from mutagen_actors.wire import tunnel  # noqa: E402

from bench.run_support import QuietLog  # noqa: E402

FRAME = 1 << 20


class _FdReader:
    """Measured and not kept (see bench/README.md): ``read`` as a non-blocking ``os.read`` on
    the descriptor, waiting for readability only when it has no data (registered while reads
    keep coming). Cheapest when the pipe is kept full, dearer per wake than the transport when
    the reader keeps up with a paced writer."""

    def __init__(self, fd: int):
        self.fd, self._loop, self._waiter = fd, None, None
        os.set_blocking(fd, False)
        tunnel.grow_pipe(fd)

    async def read(self, n: int) -> bytes:
        while True:
            try:
                return os.read(self.fd, n)
            except BlockingIOError:
                pass
            loop = asyncio.get_running_loop()
            if self._loop is not loop:
                loop.add_reader(self.fd, self._readable)
                self._loop = loop
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _readable(self) -> None:
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
        else:
            self._loop.remove_reader(self.fd)
            self._loop = None


def _writer(fd: int, total: int, piece: int, rate: float = 0.0) -> None:
    """Write ``total`` frames in ``piece``-byte writes, at most ``rate`` bytes per second (0:
    as fast as the pipe takes them; a rate makes the reader wake for about every piece, as
    the agent does behind sshd)."""
    payload = os.urandom(FRAME)
    frame = b"".join(tunnel.frame_parts(tunnel.DATA, payload, prefix=tunnel.route_prefix(b"r")))
    view = memoryview(frame)
    started, sent = time.perf_counter(), 0
    with os.fdopen(fd, "wb", buffering=0) as out:
        for _ in range(total):
            for at in range(0, len(frame), piece):
                out.write(view[at:at + piece])
                if rate:
                    sent += piece
                    ahead = started + sent / rate - time.perf_counter()
                    if ahead > 0:
                        time.sleep(ahead)


async def _read(kind: str, total: int, piece: int, rate: float = 0.0) -> tuple[float, float]:
    read_fd, write_fd = os.pipe()
    loop = asyncio.get_running_loop()
    if kind == "stream":
        reader = asyncio.StreamReader(limit=1 << 22)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(read_fd, "rb", buffering=0))
    elif kind == "pipe":
        reader = tunnel.PipeReader()
        tunnel.grow_pipe(read_fd)
        await loop.connect_read_pipe(lambda: reader, os.fdopen(read_fd, "rb", buffering=0))
    else:
        reader = _FdReader(read_fd)
    got = [0]
    done = loop.create_future()

    def on_data(route, payload):
        got[0] += 1
        if got[0] == total and not done.done():
            done.set_result(None)

    class _Writer:  # the tunnel's own writes (pings) go nowhere
        def write(self, data):
            pass

        async def drain(self):
            pass

        def close(self):
            pass

    link = tunnel.Tunnel(reader, _Writer(), on_data, interval=30.0, log=QuietLog())
    thread = threading.Thread(target=_writer, args=(write_fd, total, piece, rate), daemon=True)
    cpu, wall = time.thread_time(), time.perf_counter()
    link.start()
    thread.start()
    await asyncio.wait_for(done, 120)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    thread.join(10)
    await link.close()
    if kind == "fd":
        os.close(read_fd)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--piece", type=int, default=32 * 1024)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="MB/s the writer keeps to (0: as fast as it can)")
    args = parser.parse_args()
    limit_arenas()  # the remote agent's allocator set-up (agent.remote_main, LocalEndpoint.start)
    keep_trimmable()
    print(f"{args.megabytes} x 1 MiB frames in {args.piece}-byte writes"
          f"{f' at {args.rate:g} MB/s' if args.rate else ''}; "
          f"load average {os.getloadavg()[0]:.2f}")
    for run in range(args.repeat):
        for kind in ("stream", "pipe", "fd"):
            cpu, wall = asyncio.run(_read(kind, args.megabytes, args.piece, args.rate * 1e6))
            print(f"run {run + 1} {kind:6}  reader CPU {cpu:.3f} s ({cpu / args.megabytes * 1024:.2f}"
                  f" s/GB)  wall {wall:.3f} s")


if __name__ == "__main__":
    main()
