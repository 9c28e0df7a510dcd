"""The benchmark suite of issue 6: mutagen-actors against rsync and unison over one private sshd.

Usage (as root, from the repository)::

    .venv/bin/python bench/suite.py [--json out.json] [--files 100000] [--only NAME ...]

One run: installs the peers if missing (apt-get install -y rsync unison), generates (or reuses)
the data tree on /dev/shm, copies it to a working source, starts a private sshd on 127.0.0.1
(``tests/remote/infra.py``) behind a byte-counting TCP proxy, a private daemon with its own data
directory and HOME, and runs the scenarios in order for every tool on the same data:

  initial   initial sync local -> SSH remote (mutagen-actors, rsync -a, unison -batch)
  nochange  a no-change cycle (sync flush / rsync re-run / unison re-run)
  touch100  100 files' content changed, then flush / re-run
  onebyte   one byte changed in the 100 MiB file: time and bytes on the wire
  rename    a directory of 10,000 files renamed: bytes on the wire
  latency   edit-to-visible with watching on, local -> SSH remote, 200 edits (p50, p99)
  memory    peak and steady RSS of every process of the session (daemon, actors, remote
            agent) holding the tree, and their idle CPU over 10 s; steady = once the on-demand
            stager and transitioner have hibernated (MUTAGEN_ACTORS_IDLE_EXIT, 30 s by default)

The initial sync is always performed (later scenarios need a synced tree); ``--only`` chooses
what is reported. Bytes on the wire are counted by the proxy: every tool's ssh connection goes
through it, so all tools are counted the same way (both directions, ssh framing included).

Every wait has a deadline; everything started is stopped by pid; the working copies are removed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import multiprocessing
import os
import platform
import pwd
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

from tests.remote import infra  # noqa: E402

try:
    from bench.sync_many import awake_job_actors  # noqa: E402 - one definition of "awake"
    from mutagen_actors.supervisor.child_spec import idle_exit_setting  # noqa: E402
    from mutagen_actors.wire.messages import control  # noqa: E402
    from mutagen_actors.wire.messages import sync as sm  # noqa: E402
    from mutagen_actors.wire.version import VERSION  # noqa: E402
    from syncsession.conftest import StreamClient  # noqa: E402
except ImportError:  # pragma: no cover
    sys.exit("run with the project's venv: .venv/bin/python bench/suite.py")

DATA_BASE = os.environ.get("MUTAGEN_ACTORS_SUITE_DIR", "/dev/shm/mutagen-actors-suite")
GENERATOR_VERSION = "suite-v1"
FILES_PER_DIR = 20
DIRS_PER_TOP = 500  # a top directory holds 10,000 files (the rename scenario renames one)
LARGE_FILES = (("big/large-100M.bin", 100 << 20), ("big/large-32M-a.bin", 32 << 20),
               ("big/large-32M-b.bin", 32 << 20), ("big/large-8M.bin", 8 << 20))
EDIT_FILES = 100
DATA_ENV = "MUTAGEN_ACTORS_DATA_DIRECTORY"
SCENARIOS = ("initial", "nochange", "touch100", "onebyte", "rename", "latency", "memory")
MB = 1_000_000


# ----------------------------------------------------------------------------------------- data

def generate(files: int) -> tuple[str, dict]:
    """The cached pristine tree for ``files`` small files (plus the large and edit files);
    returns (root, facts). Regenerated when its marker does not match."""
    base = os.path.join(DATA_BASE, f"data-{files}")
    tree, marker = os.path.join(base, "tree"), os.path.join(base, "GENERATED")
    version = f"{GENERATOR_VERSION} {files}"
    try:
        with open(marker) as handle:
            lines = handle.read().splitlines()
        if lines and lines[0] == version:
            return tree, json.loads(lines[1])
    except (FileNotFoundError, IndexError, ValueError):
        pass
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(tree)
    started = time.perf_counter()
    rng = random.Random(6)
    pool = os.urandom(4 << 20)
    total = count = 0
    directories = math.ceil(files / FILES_PER_DIR)
    for index in range(directories):
        directory = os.path.join(tree, f"t{index // DIRS_PER_TOP:02d}", f"s{index % DIRS_PER_TOP:03d}")
        os.makedirs(directory)
        for number in range(min(FILES_PER_DIR, files - index * FILES_PER_DIR)):
            size = rng.randint(1024, 16384)
            offset = rng.randrange(0, len(pool) - size)
            _write_new(os.path.join(directory, f"f{number:02d}.dat"), pool[offset:offset + size])
            total += size
            count += 1
    os.makedirs(os.path.join(tree, "big"))
    for relative, size in LARGE_FILES:
        _write_new(os.path.join(tree, relative), os.urandom(size))
        total += size
        count += 1
    os.makedirs(os.path.join(tree, "edits"))
    for number in range(EDIT_FILES):
        content = f"edit file {number}\n".encode()
        _write_new(os.path.join(tree, "edits", f"e{number:03d}.txt"), content)
        total += len(content)
        count += 1
    facts = {"files": count, "bytes": total, "directories": directories + 2}
    with open(marker, "w") as handle:
        handle.write(version + "\n" + json.dumps(facts) + "\n")
    print(f"generated {count} files, {total / MB:.0f} MB in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    return tree, facts


def _write_new(path: str, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)


def tree_summary(root: str) -> tuple[int, int]:
    """(regular files, bytes) below ``root``, skipping tool metadata."""
    files = size = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as listing:
            for item in listing:
                if item.name.startswith((".mutagen", ".unison")):
                    continue
                if item.is_dir(follow_symlinks=False):
                    stack.append(item.path)
                elif item.is_file(follow_symlinks=False):
                    files += 1
                    size += item.stat(follow_symlinks=False).st_size
    return files, size


def same_file(a: str, b: str) -> bool:
    try:
        with open(a, "rb") as one, open(b, "rb") as two:
            return one.read() == two.read()
    except OSError:
        return False


# ---------------------------------------------------------------------------------------- proxy

def _pump(source: socket.socket, sink: socket.socket, counters, index: int) -> None:
    """Move bytes from ``source`` to ``sink`` until end of stream, counting them. The proxy
    must perturb the tools it measures as little as it can (the initial sync of
    mutagen-actors keeps both cores busy, rsync's does not): the bytes go through a pipe with
    ``os.splice`` (no copy through this process, 1 MiB per call), the byte-by-byte loop only
    where splice is missing."""
    try:
        if hasattr(os, "splice"):
            _pump_splice(source, sink, counters, index)
        else:
            _pump_copy(source, sink, counters, index)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _pump_splice(source: socket.socket, sink: socket.socket, counters, index: int) -> None:
    size = 1 << 20
    read_end, write_end = os.pipe()
    try:
        try:
            fcntl.fcntl(write_end, getattr(fcntl, "F_SETPIPE_SZ", 1031), size)
        except OSError:
            size = 1 << 16
        src, dst = source.fileno(), sink.fileno()
        while True:
            n = os.splice(src, write_end, size)
            if not n:
                return
            left = n
            while left:
                left -= os.splice(read_end, dst, left)
            with counters.get_lock():
                counters[index] += n
    finally:
        os.close(read_end)
        os.close(write_end)


def _pump_copy(source: socket.socket, sink: socket.socket, counters, index: int) -> None:
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    while True:
        n = source.recv_into(buffer)
        if not n:
            return
        sink.sendall(view[:n])
        with counters.get_lock():
            counters[index] += n


def _serve_proxy(listener: socket.socket, target: int, counters) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", target), timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # 0: client -> sshd (bytes sent towards the remote), 1: sshd -> client.
        threading.Thread(target=_pump, args=(client, upstream, counters, 0), daemon=True).start()
        threading.Thread(target=_pump, args=(upstream, client, counters, 1), daemon=True).start()


class CountingProxy:
    """A TCP proxy on 127.0.0.1 in front of ``target`` (a forked process with a thread pair per
    connection) counting bytes in each direction over all connections."""

    def __init__(self, target: int):
        context = multiprocessing.get_context("fork")
        self.counters = context.Array("Q", 2)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self.process = context.Process(target=_serve_proxy, args=(listener, target, self.counters),
                                       daemon=True)
        self.process.start()
        listener.close()

    def read(self) -> tuple[int, int]:
        with self.counters.get_lock():
            return self.counters[0], self.counters[1]

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)


# ------------------------------------------------------------------------------------ processes

def process_table() -> dict[int, tuple[int, str]]:
    """{pid: (ppid, comm)} of every live process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1:stat.rfind(")")]
        table[int(name)] = (int(stat[stat.rfind(")") + 2:].split()[1]), comm)
    return table


def descendants(root: int, table: dict) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def memory_of(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes; zeros when the process is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, hwm


def pss_of(pid: int) -> int:
    """Proportional set size in bytes (shared pages divided among their users; 0 if gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pids) -> float:
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Samples the summed RSS of ``pids()`` every 100 ms in a thread (the pid list is refreshed
    every 500 ms); ``peak`` is the largest sum seen."""

    def __init__(self, pids: Callable[[], list[int]]):
        self.pids, self.peak = pids, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pids: list[int] = []
        round = 0
        while not self._stop.is_set():
            try:
                if round % 5 == 0:  # finding the processes costs more than reading their RSS
                    pids = self.pids()
                self.peak = max(self.peak, sum(memory_of(pid)[0] for pid in pids))
            except Exception:  # a process table read racing exits: sample again
                pass
            round += 1
            self._stop.wait(0.1)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


# ------------------------------------------------------------------------------------- results

@dataclass
class Row:
    scenario: str
    tool: str
    seconds: Optional[float] = None
    bytes_up: Optional[int] = None
    bytes_down: Optional[int] = None
    peak_memory: Optional[int] = None
    target: str = "-"
    ok: Optional[bool] = None
    detail: str = ""
    vs_rsync: Optional[float] = None
    vs_unison: Optional[float] = None
    extra: dict = field(default_factory=dict)

    @property
    def wire(self) -> Optional[int]:
        if self.bytes_up is None:
            return None
        return self.bytes_up + (self.bytes_down or 0)


def fill_ratios(rows: list[Row]) -> None:
    by = {(r.scenario, r.tool): r for r in rows}
    for row in rows:
        for peer, attribute in (("rsync", "vs_rsync"), ("unison", "vs_unison")):
            other = by.get((row.scenario, peer))
            if other and other.seconds and row.seconds is not None and other.error_free():
                setattr(row, attribute, row.seconds / other.seconds)


Row.error_free = lambda self: not self.detail.startswith("ERROR")  # type: ignore[attr-defined]


def human_bytes(value: Optional[int]) -> str:
    if value is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def print_table(rows: list[Row]) -> None:
    header = ("scenario", "tool", "wall", "vs rsync", "vs unison", "wire (up+down)", "peak mem",
              "target", "result", "detail")
    lines = [header]
    for r in rows:
        lines.append((
            r.scenario, r.tool, "-" if r.seconds is None else f"{r.seconds:.3f} s",
            "-" if r.vs_rsync is None else f"{r.vs_rsync:.2f}x",
            "-" if r.vs_unison is None else f"{r.vs_unison:.2f}x",
            human_bytes(r.wire), human_bytes(r.peak_memory), r.target,
            "-" if r.ok is None else ("pass" if r.ok else "MISS"), r.detail))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header) - 1)]
    for line in lines:
        print("  ".join(str(v).ljust(w) for v, w in zip(line, widths)) + "  " + line[-1])


def start_profilers(pids: list[int], directory: str, rate: int = 50) -> list[subprocess.Popen]:
    """py-spy (``pip install py-spy``) on each pid, raw folded stacks in
    ``<directory>/<pid>-<name>.txt`` (the name from the process's ``comm``)."""
    os.makedirs(directory, exist_ok=True)
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    started = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm") as handle:
                name = handle.read().strip()
        except OSError:
            continue
        if not name.startswith("python"):
            continue
        started.append(subprocess.Popen(
            [spy, "record", "-p", str(pid), "-r", str(rate), "-f", "raw", "-o",
             os.path.join(directory, f"{pid}-{name}.txt")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return started


class LateProfilers:
    """``start_profilers`` for processes that start later (the on-demand stager and
    transitioner): every 200 ms in a thread, ``pids()`` not seen yet get a py-spy. ``stop()``
    ends the thread and returns every profiler started (for ``stop_profilers``)."""

    def __init__(self, pids: Callable[[], list[int]], directory: str, rate: int):
        self.pids, self.directory, self.rate = pids, directory, rate
        self.seen: set = set()
        self.started: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                new = [pid for pid in self.pids() if pid not in self.seen]
            except Exception:  # a process table read racing exits: look again
                new = []
            self.seen.update(new)
            if new:
                self.started.extend(start_profilers(new, self.directory, self.rate))
            self._stop.wait(0.2)

    def stop(self) -> list:
        self._stop.set()
        self._thread.join(5)
        return self.started


def stop_profilers(profilers: list[subprocess.Popen]) -> None:
    for process in profilers:
        process.send_signal(signal.SIGINT)
    for process in profilers:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


# ------------------------------------------------------------------------------------ the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.rows: list[Row] = []
        self.base = tempfile.mkdtemp(prefix="ma-suite-", dir="/tmp")  # short: unix sockets
        self.work = tempfile.mkdtemp(prefix="ma-suite-run-", dir="/dev/shm")
        os.chmod(self.work, 0o755)
        self.source = os.path.join(self.work, "source")
        self.remote = os.path.join(self.work, "remote")
        self.sshd = self.proxy = None
        self.data_dir = os.path.join(self.base, "data")
        self.home = os.path.join(self.base, "home")
        self.session = "bench"
        self.unison_dir = os.path.join(self.base, "unison")

    # -- set-up ---------------------------------------------------------------------------------

    def start(self) -> None:
        infra.ensure_packages({"/usr/bin/rsync": "rsync", "/usr/bin/unison": "unison"})
        pristine, self.facts = generate(self.args.files)
        started = time.perf_counter()
        subprocess.run(["cp", "-a", pristine, self.source], check=True, timeout=300)
        print(f"copied the source in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        self.sshd = infra.PrivateSshd(tempfile.mkdtemp(prefix="ma-suite-sshd-", dir="/tmp")).start()
        self.login = pwd.getpwnam(self.sshd.user)
        os.makedirs(self.remote)
        os.chown(self.remote, self.login.pw_uid, self.login.pw_gid)
        self.proxy = CountingProxy(self.sshd.port)
        # The client side: alias testhost -> the proxy, for ssh (-F), rsync, unison and the daemon.
        self.ssh_dir = os.path.join(self.sshd.root, "bench-client")
        os.makedirs(self.ssh_dir, mode=0o700)
        self.ssh_config = os.path.join(self.ssh_dir, "config")
        with open(self.ssh_config, "w") as handle:
            handle.write(f"Host testhost\n  HostName 127.0.0.1\n  Port {self.proxy.port}\n"
                         f"  User {self.sshd.user}\n  IdentityFile {self.sshd.client.identity}\n"
                         f"  UserKnownHostsFile {self.ssh_dir}/known_hosts\n")
        key = " ".join(self.sshd.host_public_key.split()[:2])
        with open(os.path.join(self.ssh_dir, "known_hosts"), "w") as handle:
            handle.write(f"[127.0.0.1]:{self.proxy.port} {key}\n")
        os.makedirs(self.home)
        os.symlink(self.ssh_dir, os.path.join(self.home, ".ssh"))
        os.makedirs(self.unison_dir)
        self.cli("daemon", "start", timeout=60)
        # Install the agent on the remote first (a one-time cost rsync does not have).
        warm = os.path.join(self.base, "warm")
        os.makedirs(warm)
        with open(os.path.join(warm, "x"), "w") as handle:
            handle.write("x")
        self.target("warm")
        self.cli("sync", "create", "--name", "warm", warm, f"testhost:{self.target('warm')}",
                 timeout=180)
        self.wait(lambda: os.path.exists(os.path.join(self.target("warm"), "x")), 60, "warm-up sync")
        self.cli("sync", "terminate", "warm", timeout=60)

    def stop(self) -> None:
        keep_log = getattr(self.args, "keep_log", None)  # bench/docker_initial.py has none
        if keep_log:
            try:
                shutil.copy(os.path.join(self.data_dir, "daemon", "daemon.log"), keep_log)
            except OSError as error:
                print(f"daemon log not kept: {error}", file=sys.stderr)
        for pid in self.daemon_pids():
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        try:
            self.wait(lambda: not self.daemon_pids(), 10, "daemon processes to exit")
        except infra.InfraError as error:
            print(error, file=sys.stderr)
        if self.proxy:
            self.proxy.stop()
        if self.sshd:
            self.sshd.stop()
            shutil.rmtree(self.sshd.root, ignore_errors=True)
            shutil.rmtree(os.path.join(self.sshd.home, ".unison"), ignore_errors=True)
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- helpers --------------------------------------------------------------------------------

    @property
    def env(self) -> dict:
        # Byte code is cached (under the run's directory) as in an installed package: with
        # PYTHONDONTWRITEBYTECODE every CLI command would compile all its modules again.
        inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return {"PYTHONPYCACHEPREFIX": os.path.join(self.base, "pycache"), **inherited,
                DATA_ENV: self.data_dir, "HOME": self.home,
                "MUTAGEN_ACTORS_LOG_LEVEL": os.environ.get("MUTAGEN_ACTORS_LOG_LEVEL", "info"), "UNISON": self.unison_dir}

    def cli(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "mutagen_actors.cli", *args], env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"mutagen-actors {' '.join(args)}: {result.stderr.strip()[-1500:]}")
        return result

    def request(self, body, timeout: float = 60.0):
        client = StreamClient(os.path.join(self.data_dir, "daemon", "daemon.sock"))
        client.connect(5.0)
        try:
            client.request(control.Hello(VERSION), 5.0)
            return client.request(body, timeout)
        finally:
            client.close()

    def state(self, name: str):
        sessions = self.request(sm.SyncList(sm.Selection([name]))).sessions
        return sessions[0] if sessions else None

    @staticmethod
    def wait(predicate, timeout: float, what: str, interval: float = 0.02):
        return infra.wait_for(predicate, timeout, what, interval)

    def target(self, tool: str) -> str:
        path = os.path.join(self.remote, tool)
        if not os.path.isdir(path):
            os.makedirs(path)
            os.chown(path, self.login.pw_uid, self.login.pw_gid)
        return path

    def daemon_pids(self) -> list[int]:
        needle = f"{DATA_ENV}={self.data_dir}".encode()
        found = []
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != os.getpid():
                try:
                    with open(f"/proc/{name}/environ", "rb") as handle:
                        if needle in handle.read().split(b"\0"):
                            found.append(int(name))
                except OSError:
                    pass
        return found

    def remote_pids(self, agent: bool) -> list[int]:
        """Processes the sshd runs for its logins (not sshd itself): the mutagen-actors agent
        (``agent=True``) or the peers' servers (rsync/unison)."""
        table = process_table()
        pids = [pid for pid in descendants(self.sshd.process.pid, table) if table[pid][1] != "sshd"]
        return [pid for pid in pids if ("rsync" in table[pid][1] or "unison" in table[pid][1]) != agent]

    def mutagen_pids(self) -> list[int]:
        return self.daemon_pids() + self.remote_pids(agent=True)

    def cpu_by_process(self) -> dict:
        """CPU seconds (user + system, since start) of each process of the session, named by
        the actor it runs (from the daemon's log), ``agent`` for the remote ones."""
        found = {}
        for pid, name in self.process_names().items():
            key = name if name not in found else f"{name} ({pid})"
            found[key] = round(cpu_seconds([pid]), 2)
        return found

    def process_names(self) -> dict:
        """pid -> the actor it runs (from the daemon's log), ``agent`` for the remote ones."""
        names = {}
        try:
            with open(os.path.join(self.data_dir, "daemon", "daemon.log")) as handle:
                for line in handle:
                    if '"actor ready"' in line or '"daemon started"' in line:
                        event = json.loads(line)
                        names[event["pid"]] = event.get("actor", "daemon")
        except (OSError, ValueError):
            pass
        agents = set(self.remote_pids(agent=True))
        return {pid: "agent" if pid in agents else names.get(pid, cmdline(pid)[:20] or str(pid))
                for pid in self.mutagen_pids()}

    def run_peer(self, scenario: str, tool: str, argv: list[str], timeout: float) -> Row:
        up0, down0 = self.proxy.read()
        started = time.perf_counter()
        process = subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
        local = lambda: [process.pid, *descendants(process.pid, process_table())]  # noqa: E731
        with Sampler(lambda: local() + self.remote_pids(agent=False)) as sampler:
            try:
                output, _ = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate(10)
                output += f"\n(killed after {timeout:g} s)".encode()
                process.returncode = -9
        seconds = time.perf_counter() - started
        up1, down1 = self.proxy.read()
        row = Row(scenario, tool, seconds, up1 - up0, down1 - down0, sampler.peak)
        if process.returncode != 0:
            row.detail = f"ERROR exit {process.returncode}: " + output.decode(errors="replace").strip()[-300:]
        return row

    def rsync(self, scenario: str, timeout: float = 300) -> Row:
        argv = ["rsync", "-a", "--delete", "--no-whole-file", "-e", f"ssh -F {self.ssh_config}",
                self.source + "/", f"testhost:{self.target('rsync')}/"]
        return self.run_peer(scenario, "rsync", argv, timeout)

    def unison(self, scenario: str, timeout: float = 600) -> Row:
        argv = ["unison", self.source, f"ssh://testhost/{self.target('unison')}", "-batch",
                "-ui", "text", "-sshargs", f"-F {self.ssh_config}", "-times", "-silent",
                "-confirmbigdeletes=false"]
        return self.run_peer(scenario, "unison", argv, timeout)

    def mutagen(self, scenario: str, action: Callable[[], None], done: Callable[[], bool],
                timeout: float) -> Row:
        """Time ``action`` (a CLI command) plus the wait until ``done()`` holds. ``done`` may
        return a ``time.perf_counter()`` reading instead of True: the moment the condition was
        observed, when checking it afterwards took time of its own (a walk of the target tree)
        that is the benchmark's, not the tool's."""
        up0, down0 = self.proxy.read()
        started = time.perf_counter()
        row = Row(scenario, "mutagen-actors")
        ended = None
        with Sampler(self.mutagen_pids) as sampler:
            try:
                action()
                value = self.wait(done, max(1.0, timeout - (time.perf_counter() - started)),
                                  f"{scenario}: the change to be visible on the remote", 0.005)
                if isinstance(value, float):
                    ended = value
            except Exception as error:  # reported as the row's error, the run goes on
                row.detail = f"ERROR {error}"[:400]
        row.seconds = (time.perf_counter() if ended is None else ended) - started
        up1, down1 = self.proxy.read()
        row.bytes_up, row.bytes_down, row.peak_memory = up1 - up0, down1 - down0, sampler.peak
        return row

    def flush(self) -> None:
        self.cli("sync", "flush", self.session, timeout=300)

    def verify(self, row: Row, tool: str) -> None:
        if row.detail.startswith("ERROR"):
            return
        got = tree_summary(self.target(tool))
        want = tree_summary(self.source)
        if got != want:
            row.detail = f"ERROR target has {got[0]} files/{got[1]} B, source {want[0]}/{want[1]} B"

    def report(self, *rows: Row) -> None:
        for row in rows:
            if row.scenario in self.args.only:
                self.rows.append(row)
                print(f"  {row.scenario:9s} {row.tool:15s} "
                      f"{'-' if row.seconds is None else f'{row.seconds:.3f} s':>10s} "
                      f"wire {human_bytes(row.wire):>9s} {row.detail}", file=sys.stderr, flush=True)

    def peer_runs(self) -> list:
        return [getattr(self, name) for name in getattr(self.args, "peers", ("rsync", "unison"))]

    def peers_wanted(self) -> bool:
        return bool(set(self.args.only) & {"initial", "nochange", "touch100", "onebyte", "rename"})

    # -- scenarios ------------------------------------------------------------------------------

    def initial(self) -> None:
        expected = self.facts["files"]

        created = []

        def create():
            started = time.perf_counter()
            self.cli("sync", "create", "--name", self.session, self.source,
                     f"testhost:{self.target('mutagen')}", timeout=600)
            created.append(time.perf_counter() - started)

        want = (expected, self.facts["bytes"])
        seen: dict = {}

        def synced():
            # Done when the remote tree is complete, checked on the tree itself once per
            # successful cycle (a cycle can finish with part of the tree staged). The session's
            # beta counts are not used: they come from a scan, so right after the first cycle
            # they still describe the empty target until a later cycle rescans it.
            # Polled every 50 ms: each poll is a daemon connection and a state request, and at
            # the 5 ms of the other scenarios that load would slow the sync being timed.
            state = self.state(self.session)
            if state is None or state.successful_cycles < 1:
                time.sleep(0.05)
                return False
            seen.setdefault("first_cycle", time.perf_counter())
            seen["state"] = (state.successful_cycles, state.beta.files, state.status,
                             state.last_error[:200], len(state.beta.transition_problems),
                             len(state.beta.scan_problems))
            if seen.get("checked") == state.successful_cycles:
                time.sleep(0.05)
                return False
            seen["checked"] = state.successful_cycles
            # The clock stops when this cycle was seen, if the tree proves complete: the walk
            # (~0.4 s at 100k files) is the benchmark's check, not the sync's work; a tree found
            # incomplete keeps the clock running to a later cycle.
            observed = time.perf_counter()
            if tree_summary(self.target("mutagen")) == want:
                seen["walk"] = time.perf_counter() - observed
                return observed
            return False

        cpu_before = {}

        def create_profiled():
            cpu_before.update(self.cpu_by_process())  # daemon and agent of the warm-up
            create()
            if self.args.profile:
                self.profilers = LateProfilers(self.mutagen_pids, self.args.profile,
                                               getattr(self.args, "profile_rate", 50))

        t0 = time.perf_counter()
        row = self.mutagen("initial", create_profiled, synced, 900)
        if getattr(self, "profilers", None) is not None:
            stop_profilers(self.profilers.stop())
            with open(os.path.join(self.args.profile, "names.json"), "w") as handle:
                json.dump(self.process_names(), handle)  # which file is which actor
        row.extra["cpu_seconds"] = self.cpu_by_process()
        # What the sync itself cost: minus what the processes of the warm-up had used before.
        row.extra["cpu_seconds_sync"] = {
            name: round(seconds - cpu_before.get(name, 0.0), 2)
            for name, seconds in row.extra["cpu_seconds"].items()}
        print("  CPU seconds by process: " + ", ".join(
            f"{name} {seconds:.1f}" for name, seconds in row.extra["cpu_seconds"].items()),
            file=sys.stderr)
        print("  of which during the sync: " + ", ".join(
            f"{name} {seconds:.1f}" for name, seconds in row.extra["cpu_seconds_sync"].items()),
            file=sys.stderr)
        if "first_cycle" in seen:
            cycles, files, status, error, transition, scan = seen["state"]
            row.extra.update(first_cycle_seconds=seen["first_cycle"] - t0, cycles=cycles,
                             check_walk_seconds=round(seen.get("walk", 0.0), 3),
                             beta_files=files, status=status, last_error=error,
                             transition_problems=transition, scan_problems=scan)
        self.verify(row, "mutagen")
        row.target = "<= 1.0x rsync"
        extra = row.extra
        notes = [f"create answered in {created[0]:.1f} s"] if created else []
        if "first_cycle_seconds" in extra:
            notes.append(f"first successful cycle at {extra['first_cycle_seconds']:.1f} s; "
                         f"complete after {extra['cycles']} cycle(s) (the check's walk of "
                         f"{extra['check_walk_seconds']:.2f} s not counted)")
        row.detail = "; ".join(([row.detail] if row.detail else []) + notes)
        rows = [row]
        if self.peers_wanted():
            for run in self.peer_runs():
                peer = run("initial", 900)
                self.verify(peer, peer.tool)
                rows.append(peer)
        rsync = next((r for r in rows if r.tool == "rsync"), None)
        if rsync and rsync.seconds and not rsync.detail.startswith("ERROR") and row.seconds:
            row.ok = row.seconds <= rsync.seconds and not row.detail.startswith("ERROR")
        self.report(*rows)

    def _cycle(self, scenario: str, change: Callable[[], None], visible: Callable[[str], bool],
               target: str = "-", check: Optional[Callable[[Row], Optional[bool]]] = None) -> None:
        change()
        row = self.mutagen(scenario, self.flush, lambda: visible("mutagen"), 300)
        row.target = target
        if check and not row.detail.startswith("ERROR"):
            row.ok = check(row)
        rows = [row]
        for run in self.peer_runs():
            peer = run(scenario, 600)
            if not peer.detail.startswith("ERROR") and not visible(peer.tool):
                peer.detail = "ERROR the change is not on the remote"
            rows.append(peer)
        self.report(*rows)

    def nochange(self) -> None:
        self._cycle("nochange", lambda: None, lambda tool: True, "<= 0.5 s",
                    lambda row: row.seconds <= 0.5)
        # The same cycle through the daemon's API (no CLI start-up), for the record.
        if "nochange" in self.args.only:
            started = time.perf_counter()
            self.request(sm.SyncFlush(sm.Selection([self.session]), False), 300)
            seconds = time.perf_counter() - started
            self.rows.append(Row("nochange", "mutagen-actors (API)", seconds, target="<= 0.5 s",
                                 ok=seconds <= 0.5, detail="SyncFlush request, no CLI start-up"))

    def touch100(self) -> None:
        rng = random.Random(100)
        small = [p for p in self._small_files()]
        chosen = rng.sample(small, min(100, len(small)))
        stamp = f"touched {time.time()}\n".encode()

        def change():
            for relative in chosen:
                with open(os.path.join(self.source, relative), "r+b") as handle:
                    handle.write(stamp)

        def visible(tool):
            return all(same_file(os.path.join(self.source, r), os.path.join(self.target(tool), r))
                       for r in chosen)

        self._cycle("touch100", change, visible)

    def onebyte(self) -> None:
        relative = LARGE_FILES[0][0]
        path = os.path.join(self.source, relative)
        size = os.path.getsize(path)

        def change():
            with open(path, "r+b") as handle:
                handle.seek(size // 2 + 12345)
                old = handle.read(1)
                handle.seek(-1, os.SEEK_CUR)
                handle.write(bytes([old[0] ^ 0xFF]))

        def visible(tool):
            return same_file(path, os.path.join(self.target(tool), relative))

        limit = size // 100
        self._cycle("onebyte", change, visible, f"<= {human_bytes(limit)} on the wire",
                    lambda row: row.wire <= limit)

    def rename(self) -> None:
        top = os.path.join(self.source, "t00")
        renamed = "t00-renamed"
        files, size = tree_summary(top)
        self.renamed_bytes = size

        def change():
            os.rename(top, os.path.join(self.source, renamed))

        def visible(tool):
            target = self.target(tool)
            if os.path.exists(os.path.join(target, "t00")) or \
                    not os.path.isdir(os.path.join(target, renamed)):
                return False
            return tree_summary(os.path.join(target, renamed)) == (files, size)

        limit = size // 100
        self._cycle("rename", change, visible, f"< {human_bytes(limit)} (1% of {human_bytes(size)})",
                    lambda row: row.wire < limit)

    def latency(self) -> None:
        if "latency" not in self.args.only:
            return
        target = self.target("mutagen")
        latencies, failure = [], ""
        deadline = time.monotonic() + self.args.latency_budget
        for n in range(self.args.edits):
            if time.monotonic() > deadline:
                failure = f"stopped after {n} edits: {self.args.latency_budget:g} s budget spent"
                break
            relative = os.path.join("edits", f"e{n % EDIT_FILES:03d}.txt")
            content = f"edit {n} {time.time()}\n".encode()
            with open(os.path.join(self.source, relative), "wb") as handle:
                handle.write(content)
            t0 = time.perf_counter()
            remote = os.path.join(target, relative)
            while True:
                try:
                    with open(remote, "rb") as handle:
                        if handle.read() == content:
                            break
                except OSError:
                    pass
                if time.perf_counter() - t0 > 10:
                    failure = f"edit {n} not visible after 10 s"
                    break
                time.sleep(0.0005)
            if failure:
                break
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.02)
        if len(latencies) < 2:
            self.rows.append(Row("latency", "mutagen-actors", detail=f"ERROR {failure}"))
            return
        q = statistics.quantiles(latencies, n=100)
        p50, p99 = q[49], q[98]
        detail = f"{len(latencies)} edits, p90 {q[89] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        if failure:
            detail += f"; {failure}"
        self.rows.append(Row("latency p50", "mutagen-actors", p50, target="<= 50 ms", ok=p50 <= 0.05,
                             detail=detail))
        self.rows.append(Row("latency p99", "mutagen-actors", p99, target="<= 200 ms",
                             ok=p99 <= 0.2, detail=detail))

    def memory(self) -> None:
        if "memory" not in self.args.only:
            return
        self.wait(lambda: (s := self.state(self.session)) is not None and s.status == "watching",
                  60, "the session to be idle", 0.1)
        # Steady state: the on-demand stager and transitioner have hibernated (idle exit).
        self.wait(lambda: awake_job_actors(self) == 0, idle_exit_setting() + 60,
                  "the stager and transitioner to hibernate", 0.5)
        pids = self.mutagen_pids()
        table = process_table()
        parts = {}
        peak = steady = pss = 0
        for pid in pids:
            rss, hwm = memory_of(pid)
            share = pss_of(pid)
            peak, steady, pss = peak + hwm, steady + rss, pss + share
            parts[f"{pid} {table.get(pid, (0, '?'))[1]}"] = {"rss": rss, "hwm": hwm, "pss": share,
                                                              "cmdline": cmdline(pid)[:200]}
        breakdown = ", ".join(f"{k.split()[1]} {v['rss'] / MB:.0f}" for k, v in parts.items())
        self.rows.append(Row("memory peak", "mutagen-actors", peak_memory=peak, target="<= 300 MB",
                             ok=peak <= 300 * MB, detail=f"sum of VmHWM of {len(pids)} processes",
                             extra={"processes": parts}))
        self.rows.append(Row("memory steady", "mutagen-actors", peak_memory=steady,
                             target="<= 300 MB", ok=steady <= 300 * MB,
                             detail=f"sum of VmRSS (MB): {breakdown}; sum of PSS "
                                    f"{pss / MB:.0f} MB"))
        before, t0 = cpu_seconds(pids), time.perf_counter()
        time.sleep(self.args.idle_seconds)  # measuring idle CPU over a fixed window, not waiting
        used = (cpu_seconds(self.mutagen_pids()) - before) / (time.perf_counter() - t0)
        self.rows.append(Row("idle CPU", "mutagen-actors", target="< 1% of a core", ok=used < 0.01,
                             detail=f"{100 * used:.2f}% of a core over {self.args.idle_seconds:g} s, "
                                    f"{len(pids)} processes"))

    def _small_files(self) -> list[str]:
        found = []
        for index in range(min(500, math.ceil(self.args.files / FILES_PER_DIR))):
            directory = f"t{index // DIRS_PER_TOP:02d}/s{index % DIRS_PER_TOP:03d}"
            found.extend(f"{directory}/f{n:02d}.dat" for n in range(FILES_PER_DIR)
                         if os.path.exists(os.path.join(self.source, directory, f"f{n:02d}.dat")))
        return found

    def run(self) -> None:
        # Order matters: each scenario starts from the state the previous one left. The memory
        # scenario runs before the rename/latency churn so "steady" is the idle synced session;
        # VmHWM keeps the peak of the whole run (including the initial sync).
        order = [self.initial, self.nochange, self.touch100, self.onebyte, self.memory,
                 self.rename, self.latency]
        for step in order:
            name = step.__name__
            if name != "initial" and name not in self.args.only:
                continue
            print(f"scenario {name} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            try:
                step()
            except Exception as error:  # one failing scenario does not stop the others
                self.rows.append(Row(name, "-", detail=f"ERROR {type(error).__name__}: {error}"[:400]))
            print(f"scenario {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr,
                  flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="mutagen-actors vs rsync and unison over one sshd")
    parser.add_argument("--json", help="write all results to this file")
    parser.add_argument("--files", type=int, default=100_000, help="small files in the tree")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--latency-budget", type=float, default=120.0,
                        help="seconds the latency scenario may take at most")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--peers", nargs="*", choices=("rsync", "unison"),
                        default=["rsync", "unison"], help="peer tools to run (default: both)")
    parser.add_argument("--profile", metavar="DIRECTORY",
                        help="py-spy every process of the session during the initial sync")
    parser.add_argument("--profile-rate", type=int, default=50, metavar="HZ",
                        help="samples per second of --profile (default 50)")
    parser.add_argument("--keep-log", metavar="PATH", help="copy the daemon's log here at the end")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("run as root: it installs packages, adds a login user and starts an sshd")
    # SIGTERM unwinds like an error, so the finally below stops what the run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args)
    started = time.perf_counter()
    try:
        bench.start()
        bench.run()
    finally:
        bench.stop()
    fill_ratios(bench.rows)
    total = time.perf_counter() - started
    print(f"\n{args.files} small files ({bench.facts['files']} files, "
          f"{bench.facts['bytes'] / MB:.0f} MB); whole run {total:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print_table(bench.rows)
    if args.json:
        document = {
            "command": " ".join([os.path.relpath(sys.executable, REPO), "bench/suite.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "kernel": platform.release(), "load_average": os.getloadavg()},
            "tree": bench.facts, "seconds": total,
            "results": [{**asdict(r), "wire": r.wire} for r in bench.rows],
        }
        with open(args.json, "w") as handle:
            json.dump(document, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
