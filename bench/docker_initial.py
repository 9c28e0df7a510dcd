"""Issue 5's Docker benchmark: initial sync of a generated tree local -> container, mutagen-actors
against ``docker cp``.

Usage (as root, from the repository)::

    .venv/bin/python bench/docker_initial.py [--files 100000] [--repeat 1] [--json out.json]

The tree is ``bench/suite.py``'s (``suite.generate``: ``--files`` small files of 1-16 KiB, 20 a
directory, plus 172 MB in four large files and 100 small edit files; cached on /dev/shm),
copied to a working source. A private dockerd and a container of the bare-python image
(``tests/remote/infra.py``: ``--network none``, python3 only) receive it.

Bytes: every docker CLI call of both tools goes through a byte-counting proxy on a unix socket
in front of the private engine's API socket (the daemon's captured ``DOCKER_HOST`` and
``docker cp``'s point at the proxy). For mutagen-actors that is the ``docker exec -i`` streams
of its agent (stdin towards the container = "up", stdout/stderr back = "down"; HTTP framing
and docker's 8-byte stream headers included); for ``docker cp`` it is the tar upload (up) and
the API answers (down). Both tools are counted at the same place, the same way.

Wall time: mutagen-actors from ``sync create`` until the container holds the whole tree (files
and bytes checked in the container after each successful cycle); ``docker cp`` is the
command's run time. The agent is installed in the container by a warm-up session first (a
one-time cost ``docker cp`` does not have; reported separately).
Both targets are checked (file count and byte total inside the container) before a row counts.

Everything started (dockerd, proxy, daemon) is stopped by pid; the working copies are removed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

from bench import suite  # noqa: E402
from tests.remote import infra  # noqa: E402

MB = 1_000_000
# Counts the files and bytes of regular files below argv[1] (run by the container's python3).
SUMMARY = ("import os,sys\nn=b=0\nfor d,_,fs in os.walk(sys.argv[1]):\n for f in fs:\n"
           "  p=os.path.join(d,f)\n  if os.path.isfile(p) and not os.path.islink(p):"
           "n+=1;b+=os.path.getsize(p)\nprint(n,b)\n")


# --------------------------------------------------------------------------- counting proxy

def _serve_unix_proxy(listener: socket.socket, target: str, counters) -> None:
    while True:
        client, _ = listener.accept()
        upstream = socket.socket(socket.AF_UNIX)
        try:
            upstream.settimeout(10)
            upstream.connect(target)
            upstream.settimeout(None)
        except OSError:
            client.close()
            upstream.close()
            continue
        # 0: docker CLI -> engine (towards the container), 1: engine -> CLI.
        threading.Thread(target=suite._pump, args=(client, upstream, counters, 0),
                         daemon=True).start()
        threading.Thread(target=suite._pump, args=(upstream, client, counters, 1),
                         daemon=True).start()


class UnixCountingProxy:
    """A unix-socket proxy at ``path`` in front of ``target`` (a forked process, a thread pair
    per connection) counting bytes in each direction over all connections."""

    def __init__(self, path: str, target: str):
        context = multiprocessing.get_context("fork")
        self.path = path
        self.counters = context.Array("Q", 2)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(64)
        self.process = context.Process(target=_serve_unix_proxy,
                                       args=(listener, target, self.counters), daemon=True)
        self.process.start()
        listener.close()

    def read(self) -> tuple[int, int]:
        with self.counters.get_lock():
            return self.counters[0], self.counters[1]

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)


# ------------------------------------------------------------------------------------ rows

@dataclass
class Row:
    tool: str
    run: int
    seconds: Optional[float] = None
    bytes_up: Optional[int] = None
    bytes_down: Optional[int] = None
    vs_docker_cp: Optional[float] = None
    detail: str = ""
    extra: dict = field(default_factory=dict)

    def ok(self) -> bool:
        return self.seconds is not None and not self.detail.startswith("ERROR")


def fill_ratios(rows: list[Row]) -> None:
    """mutagen-actors' wall time over docker cp's of the same run (pure)."""
    peers = {r.run: r for r in rows if r.tool == "docker cp" and r.ok()}
    for row in rows:
        peer = peers.get(row.run)
        if peer is not None and row.ok() and peer.seconds:
            row.vs_docker_cp = row.seconds / peer.seconds


def print_table(rows: list[Row]) -> None:
    header = ("tool", "run", "wall", "vs docker cp", "to engine", "from engine", "detail")
    lines = [header] + [(
        r.tool, str(r.run), "-" if r.seconds is None else f"{r.seconds:.2f} s",
        "-" if r.vs_docker_cp is None else f"{r.vs_docker_cp:.2f}x",
        suite.human_bytes(r.bytes_up), suite.human_bytes(r.bytes_down), r.detail) for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths)) + "  " + line[-1])


# ------------------------------------------------------------------------------------ bench

class DockerBench(suite.Bench):
    """Reuses ``suite.Bench``'s daemon helpers (cli, request, state, daemon_pids, stop)."""

    def __init__(self, args):
        super().__init__(args)
        self.dockerd: Optional[infra.PrivateDockerd] = None
        self.container = ""
        self.docker_root = tempfile.mkdtemp(prefix="ma-dk-", dir="/tmp")  # short: sockets
        self.install_seconds: Optional[float] = None

    @property
    def env(self) -> dict:
        return {**super().env, "DOCKER_HOST": f"unix://{self.proxy.path}"}

    def start(self) -> None:
        pristine, self.facts = suite.generate(self.args.files)
        started = time.perf_counter()
        subprocess.run(["cp", "-a", pristine, self.source], check=True, timeout=600)
        print(f"copied the source in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        self.dockerd = infra.PrivateDockerd(self.docker_root).start()
        image = infra.bare_python_image(self.dockerd)
        self.container = self.dockerd.run_container(image)
        self.proxy = UnixCountingProxy(os.path.join(self.base, "docker.sock"),
                                       os.path.join(self.docker_root, "docker.sock"))
        os.makedirs(self.home)
        self.cli("daemon", "start", timeout=60)
        warm = os.path.join(self.base, "warm")
        os.makedirs(warm)
        with open(os.path.join(warm, "x"), "w") as handle:
            handle.write("x")
        started = time.perf_counter()
        self.cli("sync", "create", "--name", "warm", warm,
                 f"docker://{self.container}/root/warm", timeout=180)
        self.wait(lambda: self.container_summary("/root/warm") == (1, 1), 60, "warm-up sync")
        self.install_seconds = time.perf_counter() - started
        self.cli("sync", "terminate", "warm", timeout=60)

    def stop(self) -> None:
        try:
            super().stop()  # daemon processes, proxy, working copies
        finally:
            if self.dockerd is not None:
                self.dockerd.stop()
            shutil.rmtree(self.docker_root, ignore_errors=True)

    def container_summary(self, path: str) -> tuple[int, int]:
        result = self.dockerd.docker("exec", self.container, "python3", "-c", SUMMARY, path,
                                     check=False, timeout=300)
        try:
            files, size = result.stdout.split()
            return int(files), int(size)
        except ValueError:
            return (-1, -1)

    def verify(self, row: Row, path: str) -> None:
        want = (self.facts["files"], self.facts["bytes"])
        got = self.container_summary(path)
        row.extra["container"] = got
        if row.ok() and got != want:
            row.detail = f"ERROR container has {got[0]} files/{got[1]} B, source {want[0]}/{want[1]} B"

    def mutagen_run(self, run: int) -> Row:
        name, path = f"bench{run}", f"/root/mutagen-{run}"
        want = (self.facts["files"], self.facts["bytes"])
        row = Row("mutagen-actors", run)
        up0, down0 = self.proxy.read()
        started = time.perf_counter()
        try:
            self.cli("sync", "create", "--name", name, self.source,
                     f"docker://{self.container}{path}", timeout=600)
            row.extra["create_seconds"] = time.perf_counter() - started

            checked = []

            def complete() -> bool:
                # The container is checked once per successful cycle: the session's beta counts
                # come from a scan, so after the first cycle they still describe the empty target
                # until a later cycle rescans it (waiting on them timed that cycle too).
                state = self.state(name)
                if state is None or state.successful_cycles < 1 or \
                        checked[-1:] == [state.successful_cycles]:
                    time.sleep(0.05)
                    return False
                checked.append(state.successful_cycles)
                row.extra["cycles"] = state.successful_cycles
                return self.container_summary(path) == want

            self.wait(complete, self.args.timeout, "the container to hold the whole tree", 0.02)
            row.seconds = time.perf_counter() - started
        except Exception as error:  # reported in the row; the run goes on
            row.detail = f"ERROR {error}"[:400]
        up1, down1 = self.proxy.read()
        row.bytes_up, row.bytes_down = up1 - up0, down1 - down0
        try:
            self.cli("sync", "terminate", name, timeout=120)
        except RuntimeError as error:
            row.detail = (row.detail + f"; terminate: {error}")[:400]
        self.verify(row, path)
        return row

    def docker_cp_run(self, run: int) -> Row:
        path = f"/root/dockercp-{run}"
        row = Row("docker cp", run)
        up0, down0 = self.proxy.read()
        started = time.perf_counter()
        result = subprocess.run([infra.docker_binary(), "cp", self.source,
                                 f"{self.container}:{path}"], env=self.env,
                                capture_output=True, text=True, timeout=self.args.timeout)
        seconds = time.perf_counter() - started
        up1, down1 = self.proxy.read()
        row.bytes_up, row.bytes_down = up1 - up0, down1 - down0
        if result.returncode != 0:
            row.detail = f"ERROR exit {result.returncode}: {result.stderr.strip()[-300:]}"
        else:
            row.seconds = seconds
        self.verify(row, path)
        return row

    def run(self) -> None:
        for run in range(1, self.args.repeat + 1):
            # Alternate which tool goes first, so page-cache warmth favours neither.
            tools = [self.mutagen_run, self.docker_cp_run]
            if run % 2 == 0:
                tools.reverse()
            for tool in tools:
                row = tool(run)
                print(f"  run {run} {row.tool:15s} "
                      f"{'-' if row.seconds is None else f'{row.seconds:.2f} s':>10s} "
                      f"up {suite.human_bytes(row.bytes_up):>9s} {row.detail}",
                      file=sys.stderr, flush=True)
                self.rows.append(row)
                self.dockerd.docker("exec", self.container, "rm", "-rf",
                                    f"/root/mutagen-{run}" if row.tool != "docker cp"
                                    else f"/root/dockercp-{run}", check=False, timeout=300)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="initial sync local -> container: "
                                                 "mutagen-actors vs docker cp")
    parser.add_argument("--files", type=int, default=100_000, help="small files in the tree")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tool (interleaved)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run at most")
    parser.add_argument("--json", help="write all results to this file")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("run as root: it starts a private dockerd")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = DockerBench(args)
    started = time.perf_counter()
    try:
        bench.start()
        bench.run()
    finally:
        bench.stop()
    fill_ratios(bench.rows)
    total = time.perf_counter() - started
    install = "-" if bench.install_seconds is None else f"{bench.install_seconds:.1f} s"
    print(f"\n{args.files} small files ({bench.facts['files']} files, "
          f"{bench.facts['bytes'] / MB:.0f} MB) local -> container; agent install + warm-up "
          f"{install}; whole run {total:.0f} s; load average {os.getloadavg()[0]:.1f}\n")
    print_table(bench.rows)
    if args.json:
        document = {
            "command": " ".join([os.path.relpath(sys.executable, REPO), "bench/docker_initial.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "kernel": platform.release(), "load_average": os.getloadavg()},
            "tree": bench.facts, "install_seconds": bench.install_seconds, "seconds": total,
            "results": [asdict(r) for r in bench.rows],
        }
        with open(args.json, "w") as handle:
            json.dump(document, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
