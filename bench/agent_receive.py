"""The remote agent's share of an initial sync, without SSH (issue 6).

    .venv/bin/python bench/agent_receive.py [--files 20000] [--repeat 3] [--process]
                                            [--watch no-watch] [--data-directory] [--profile F]
                                            [--create-root]

Drives an ``agent.serve_endpoint.EndpointService`` (the object the remote agent serves through
its tunnel) exactly as the daemon's stager and transitioner drive it during ``sync create`` to an
empty remote root: ``EndpointOpen``, ``Scan``, ``StageBegin`` (every file), ``StageChunks`` of
about 1 MiB each (every message encoded and then decoded and validated by ``wire.codec``, as the
agent's ``RequestServer`` does), ``Transition`` (the root: empty directory -> the whole tree),
then the next cycle's ``Scan``. The watcher runs (native, as on the remote).

The tree: ``--files`` files of 1-16 KiB of random bytes, 20 per directory, 500 directories per
top directory (the shape of ``bench/suite.py``'s tree, without its four big files). The root is
on /dev/shm; the endpoint's data directory is on the disk's /tmp by default, so the staging store
lands inside the root (``internal``), as it does for the suite's remote (home on disk, target on
tmpfs); ``--data-directory`` puts the data directory on /dev/shm instead (staging stays there).
``--create-root``: the root does not exist and the transition creates it (``sync create`` to a
new directory); with ``--data-directory`` the store is on the root's filesystem, so content is
placed on arrival and the root is built from the store's tree.

Prints, per run, the process CPU seconds and wall seconds of each phase and in total, and the
CPU per file. ``--profile FILE`` writes a cProfile of the last run (in process: the event
loop's thread only; the endpoint's worker threads show as single calls).

``--process`` runs the real agent program (``agent.remote_main serve``) on pipes instead: the
handshake, then tunnel frames written in 32 KiB pieces (what an SSH channel hands the agent),
one request in flight; the CPU is the agent process's, from ``/proc``, and its resident and
peak memory after the rescan are printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mutagen_actors.actors.sync.hashing import new_hasher  # noqa: E402
from mutagen_actors.actors.sync.model import Change, Entry  # noqa: E402
from mutagen_actors.agent.serve_endpoint import EndpointService  # noqa: E402
from mutagen_actors.wire import codec  # noqa: E402
from mutagen_actors.wire.messages import agent as am  # noqa: E402
from mutagen_actors.wire.messages import endpoint as m  # noqa: E402

PER_DIRECTORY = 20
DIRECTORIES_PER_TOP = 500
MESSAGE_BYTES = 1 << 20


def make_tree(files: int, seed: int = 6):
    """(contents by path, Entry of the root) for ``files`` random files (pure but for memory)."""
    rng = random.Random(seed)
    contents: dict[str, bytes] = {}
    tops: dict[str, dict] = {}
    for index in range(files):
        directory = index // PER_DIRECTORY
        top, sub = f"t{directory // DIRECTORIES_PER_TOP:02d}", f"d{directory % DIRECTORIES_PER_TOP:03d}"
        name = f"f{index % PER_DIRECTORY:02d}.dat"
        data = rng.randbytes(rng.randint(1024, 16384))
        hasher = new_hasher("xxh128")
        hasher.update(data)
        contents[f"{top}/{sub}/{name}"] = data
        tops.setdefault(top, {}).setdefault(sub, {})[name] = Entry.file(hasher.digest())
    root = Entry.directory({top: Entry.directory({sub: Entry.directory(names)
                                                  for sub, names in subs.items()})
                            for top, subs in tops.items()})
    return contents, root


def _roundtrip(message):
    """What the agent's RequestServer hands its handler: the message encoded, then decoded."""
    return codec.decode(codec.encode(message, id=1)).body


class Phases(dict):
    """Phase name -> (CPU seconds, wall seconds); ``clock()`` reads both (``clock_of``: the CPU
    of this process or of the agent's), ``done(name, start)`` records a phase begun at
    ``start = clock()``."""

    def __init__(self, clock_of):
        super().__init__()
        self.clock = clock_of

    def done(self, name: str, start: tuple[float, float]) -> None:
        cpu, wall = self.clock()
        self[name] = (cpu - start[0], wall - start[1])


async def one_run(contents: dict, tree: Entry, base: str, data_directory: str,
                  watch: str = "portable", create_root: bool = False) -> dict:
    root = os.path.join(base, "root")
    if not create_root:
        os.makedirs(root)
    service = EndpointService(_nothing, home=data_directory or base)  # its data under HOME
    phases = Phases(lambda: (time.process_time(), time.perf_counter()))
    clock, done = phases.clock, phases.done

    start = clock()
    opened = await service.handle(_roundtrip(am.EndpointOpen({
        "root": root, "session": "bench", "side": "beta", "watch_mode": watch})))
    epoch = opened.epoch
    first = await service.handle(_roundtrip(m.Scan(True)))
    done("open+scan", start)

    start = clock()
    items = [m.StageItem(path, _digest(tree, path)) for path in contents]
    needs = await service.handle(_roundtrip(m.StageBegin(epoch, items)))
    done("needs", start)
    assert len(needs.items) == len(contents), len(needs.items)

    start = clock()
    batch, size, completed = [], 0, 0
    for path, data in contents.items():
        batch.append(m.Chunk(path, _digest(tree, path), 0, len(data), data, True))
        size += len(data)
        if size >= MESSAGE_BYTES:
            completed += (await service.handle(_roundtrip(m.StageChunks(batch)))).completed
            batch, size = [], 0
    if batch:
        completed += (await service.handle(_roundtrip(m.StageChunks(batch)))).completed
    done("receive", start)
    assert completed == len(contents), completed

    start = clock()
    reply = await service.handle(_roundtrip(m.Transition(epoch, [
        Change("", first.root, tree)])))
    done("transition", start)
    assert not reply.result.problems, reply.result.problems[:3]

    start = clock()
    await asyncio.sleep(0)  # the watcher's batches arrive while the next cycle starts
    second = await service.handle(_roundtrip(m.Scan(False, first.generation, epoch)))
    done("rescan", start)
    assert second.counts.files == len(contents) if hasattr(second.counts, "files") else True
    await service.close()
    return phases


AGENT_PROGRAM = ("import sys; from mutagen_actors.agent.remote_main import main; "
                 "sys.exit(main(['serve']))")
PACKET = 32 * 1024  # what an SSH channel hands the agent's stdin at a time


class _AgentProcess:
    """The real agent program (``agent.remote_main serve``) on pipes, as under sshd: the
    handshake, then requests as tunnel DATA frames written in ``PACKET``-sized pieces, one
    request in flight at a time (replies awaited)."""

    async def start(self, home: str):
        from mutagen_actors.wire import handshake, tunnel

        env = dict(os.environ, HOME=home)
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", AGENT_PROGRAM, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=env, limit=1 << 22)
        features = await handshake.exchange(self.process.stdout, self.process.stdin,
                                            handshake.FEATURE_LZ4, timeout=30, peer="agent")
        self.compress = bool(features & handshake.FEATURE_LZ4)
        self.decoder = tunnel.FrameDecoder(compression=self.compress)
        self.tunnel = tunnel
        self.next_id = 0
        return self

    async def request(self, message):
        tunnel = self.tunnel
        self.next_id += 1
        payload = codec.encode(message, id=self.next_id)
        frame = b"".join(tunnel.frame_parts(tunnel.DATA, payload, compress=self.compress,
                                            prefix=tunnel.route_prefix(b"r")))
        stdin = self.process.stdin
        for at in range(0, len(frame), PACKET):
            stdin.write(frame[at:at + PACKET])
        await stdin.drain()
        while True:
            data = await self.process.stdout.read(1 << 20)
            if not data:
                raise RuntimeError("the agent closed its stdout")
            for kind, body in self.decoder.feed(data):
                if kind == tunnel.PING:
                    stdin.write(b"".join(tunnel.frame_parts(tunnel.PONG, body)))
                    continue
                if kind != tunnel.DATA or not body[0]:
                    continue  # a notification (route-less) or a pong
                envelope = codec.decode(tunnel.split_data(body)[1])
                if envelope.reply_to == self.next_id:
                    return envelope.body

    def memory(self) -> tuple[float, float]:
        """The agent's (VmRSS, VmHWM) in MB."""
        values = {}
        with open(f"/proc/{self.process.pid}/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def cpu(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()


async def process_run(contents: dict, tree: Entry, base: str, home: str, watch: str,
                      create_root: bool = False) -> dict:
    """``one_run`` against the real agent program (``HOME`` = ``home``, its data directory
    under it); CPU is the agent process's (from /proc)."""
    root = os.path.join(base, "root")
    if not create_root:
        os.makedirs(root)
    agent = await _AgentProcess().start(home or base)
    phases = Phases(lambda: (agent.cpu(), time.perf_counter()))
    clock, done = phases.clock, phases.done

    try:
        start = clock()
        opened = await agent.request(am.EndpointOpen({
            "root": root, "session": "bench", "side": "beta", "watch_mode": watch}))
        epoch = opened.epoch
        first = await agent.request(m.Scan(True))
        done("open+scan", start)
        start = clock()
        needs = await agent.request(m.StageBegin(epoch, [m.StageItem(path, _digest(tree, path))
                                                         for path in contents]))
        done("needs", start)
        assert len(needs.items) == len(contents), needs
        messages, batch, size = [], [], 0
        for path, data in contents.items():
            batch.append(m.Chunk(path, _digest(tree, path), 0, len(data), data, True))
            size += len(data)
            if size >= MESSAGE_BYTES:
                messages.append(m.StageChunks(batch))
                batch, size = [], 0
        if batch:
            messages.append(m.StageChunks(batch))
        start = clock()
        completed = 0
        for message in messages:
            completed += (await agent.request(message)).completed
        done("receive", start)
        assert completed == len(contents), completed
        start = clock()
        reply = await agent.request(m.Transition(epoch, [Change("", first.root, tree)]))
        done("transition", start)
        assert not reply.result.problems, reply.result.problems[:3]
        start = clock()
        await agent.request(m.Scan(False, first.generation, epoch))
        done("rescan", start)
        memory = agent.memory()
    finally:
        await agent.stop()
    return phases, memory


def _digest(tree: Entry, path: str) -> bytes:
    entry = tree
    for part in path.split("/"):
        entry = entry.contents[part]
    return entry.digest


async def _nothing(_message) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", default="")
    parser.add_argument("--data-directory", action="store_true",
                        help="the endpoint's data directory on /dev/shm (staging not in the root)")
    parser.add_argument("--watch", default="portable", help="watch mode (no-watch: none)")
    parser.add_argument("--create-root", action="store_true",
                        help="the root does not exist: the transition creates it (with "
                             "--data-directory the store is on its filesystem: the root is "
                             "built from the placed tree)")
    parser.add_argument("--process", action="store_true",
                        help="run the real agent program on pipes (its CPU from /proc), "
                             "HOME in the data directory's place")
    args = parser.parse_args()
    contents, tree = make_tree(args.files)
    print(f"{len(contents)} files, {sum(map(len, contents.values())) / 1e6:.0f} MB; "
          f"load average {os.getloadavg()[0]:.2f}")
    for run in range(args.repeat):
        base = tempfile.mkdtemp(prefix="s14-agent-", dir="/dev/shm")
        data = tempfile.mkdtemp(prefix="s14-agent-data-", dir="/tmp") \
            if not args.data_directory else ""
        try:
            profiler = None
            if args.profile and run == args.repeat - 1:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            memory = None
            if args.process:
                phases, memory = asyncio.run(process_run(contents, tree, base, data, args.watch,
                                                         args.create_root))
            else:
                phases = asyncio.run(one_run(contents, tree, base, data, args.watch,
                                             args.create_root))
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
        finally:
            shutil.rmtree(base, ignore_errors=True)
            if data:
                shutil.rmtree(data, ignore_errors=True)
        cpu = sum(p[0] for p in phases.values())
        wall = sum(p[1] for p in phases.values())
        text = "  ".join(f"{name} {c:.2f}/{w:.2f}" for name, (c, w) in phases.items())
        print(f"run {run + 1}: cpu {cpu:.2f} s wall {wall:.2f} s "
              f"({1e6 * cpu / len(contents):.0f} us/file cpu)  [cpu/wall] {text}"
              + (f"  agent RSS {memory[0]:.0f} MB, peak {memory[1]:.0f} MB" if memory else ""))


if __name__ == "__main__":
    main()
