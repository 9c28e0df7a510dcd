"""Edit-to-visible latency of a local-to-local sync session with watching on.

Usage: python bench/sync_latency.py [files] [edits]
Starts a private daemon (temporary data directory), creates a tree of ``files`` files on alpha,
creates a session, waits for the first sync, then edits one file at a time on alpha and measures
how long until beta shows the new content (polled every 0.5 ms). Prints p50/p90/p99 and the idle
CPU of the daemon's process tree over 5 s. Stops everything it started by pid.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from foundation.conftest import Daemon, processes_of  # noqa: E402
from syncsession.conftest import Sync  # noqa: E402


def cpu_ticks(pids) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    edits = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    base = tempfile.mkdtemp(prefix="ma-bench-", dir="/tmp")
    daemon = Daemon(os.path.join(base, "data"))
    alpha, beta = os.path.join(base, "alpha"), os.path.join(base, "beta")
    for i in range(files):
        path = os.path.join(alpha, f"d{i // 1000}", f"s{(i // 100) % 10}", f"f{i}.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as stream:
            stream.write(f"file {i}\n")
    os.mkdir(beta)
    try:
        daemon.start()
        sync = Sync(daemon)
        started = time.monotonic()
        identifier = sync.create(alpha, beta)
        while sync.state(identifier).successful_cycles < 1 or sync.state(identifier).beta.files < files:
            time.sleep(0.1)
        print(f"initial sync of {files} files: {time.monotonic() - started:.1f} s")
        latencies = []
        for n in range(edits):
            relative = os.path.join("d0", "s0", f"f{n % 100}.txt")
            content = f"edit {n}\n".encode()
            with open(os.path.join(alpha, relative), "wb") as stream:
                stream.write(content)
            t0 = time.monotonic()
            target = os.path.join(beta, relative)
            while True:
                try:
                    with open(target, "rb") as stream:
                        if stream.read() == content:
                            break
                except FileNotFoundError:
                    pass
                if time.monotonic() - t0 > 10:
                    raise SystemExit(f"edit {n} not visible after 10 s")
                time.sleep(0.0005)
            latencies.append(time.monotonic() - t0)
            time.sleep(0.02)
        latencies.sort()
        q = statistics.quantiles(latencies, n=100)
        print(f"{edits} edits: p50 {q[49] * 1000:.1f} ms, p90 {q[89] * 1000:.1f} ms, "
              f"p99 {q[98] * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
        time.sleep(1)
        pids = processes_of(daemon.data_dir)
        before, t0 = cpu_ticks(pids), time.monotonic()
        time.sleep(5)
        used = (cpu_ticks(pids) - before) / os.sysconf("SC_CLK_TCK")
        print(f"idle CPU of the daemon tree ({len(pids)} processes): "
              f"{100 * used / (time.monotonic() - t0):.2f} % of one core")
    finally:
        for pid in processes_of(daemon.data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if os.environ.get("KEEP"):
            print("kept", base)
        else:
            subprocess.run(["rm", "-rf", base], check=False)


if __name__ == "__main__":
    main()
