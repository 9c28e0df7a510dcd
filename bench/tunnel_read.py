"""The agent tunnel's input path alone: how much CPU the reading side spends per GB.

    .venv/bin/python bench/tunnel_read.py [--megabytes 512] [--repeat 3] [--piece 32768]

A writer thread pushes ``--megabytes`` of DATA frames (1 MiB codec-sized payloads, as the
relayed ``StageChunks``) into a pipe in ``--piece``-byte writes (what sshd hands the agent per
SSH packet); the reading side is a ``wire.tunnel.Tunnel`` whose ``on_data`` only counts, read
through an asyncio ``StreamReader`` on the pipe (the agent before) or ``wire.tunnel.FdReader``
(the agent now), with the agent's allocator set-up (``agent.memory``: two arenas, fixed 4 MiB
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

FRAME = 1 << 20


class _Quiet:
    def info(self, *args, **kwargs):
        pass

    warning = debug = info


def _writer(fd: int, total: int, piece: int) -> None:
    payload = os.urandom(FRAME)
    frame = b"".join(tunnel.frame_parts(tunnel.DATA, payload, prefix=tunnel.route_prefix(b"r")))
    view = memoryview(frame)
    with os.fdopen(fd, "wb", buffering=0) as out:
        for _ in range(total):
            for at in range(0, len(frame), piece):
                out.write(view[at:at + piece])


async def _read(kind: str, total: int, piece: int) -> tuple[float, float]:
    read_fd, write_fd = os.pipe()
    loop = asyncio.get_running_loop()
    if kind == "stream":
        reader = asyncio.StreamReader(limit=1 << 22)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                     os.fdopen(read_fd, "rb", buffering=0))
    else:
        reader = tunnel.FdReader(read_fd)
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

    link = tunnel.Tunnel(reader, _Writer(), on_data, interval=30.0, log=_Quiet())
    thread = threading.Thread(target=_writer, args=(write_fd, total, piece), daemon=True)
    cpu, wall = time.thread_time(), time.perf_counter()
    link.start()
    thread.start()
    await asyncio.wait_for(done, 120)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    thread.join(10)
    await link.close()
    if kind != "stream":
        os.close(read_fd)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--piece", type=int, default=32 * 1024)
    args = parser.parse_args()
    limit_arenas()  # the remote agent's allocator set-up (agent.remote_main, LocalEndpoint.start)
    keep_trimmable()
    print(f"{args.megabytes} x 1 MiB frames in {args.piece}-byte writes; "
          f"load average {os.getloadavg()[0]:.2f}")
    for run in range(args.repeat):
        for kind in ("stream", "fd"):
            cpu, wall = asyncio.run(_read(kind, args.megabytes, args.piece))
            print(f"run {run + 1} {kind:6}  reader CPU {cpu:.3f} s ({cpu / args.megabytes * 1024:.2f}"
                  f" s/GB)  wall {wall:.3f} s")


if __name__ == "__main__":
    main()
