"""Many sessions on one daemon: every one converges, and the memory of the whole daemon tree.

Usage: python bench/sync_many.py [sessions] [files per session]
Creates ``sessions`` local-to-local sessions of ``files`` files each (all watching), waits until
every beta root holds every file, then sums PSS (``/proc/PID/smaps_rollup``) over the daemon's
processes (daemon, fork server, actors). Stops everything it started by pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from foundation.conftest import Daemon, processes_of  # noqa: E402
from syncsession.conftest import Sync  # noqa: E402


def rollup(pid: int) -> dict:
    """``/proc/PID/smaps_rollup`` as {field: KiB} (empty if the process is gone)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as stream:
            for line in stream:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    fields[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return fields


def pss_kib(pid: int) -> int:
    return rollup(pid).get("Pss", 0)


def actor_names(log_path: str) -> dict:
    """pid -> actor name (``alpha``, ``reconciler``...) from the daemon log's *actor ready* lines."""
    names = {}
    with open(log_path) as stream:
        for line in stream:
            if '"actor ready"' in line:
                record = json.loads(line)
                names[record.get("pid")] = record.get("actor", "?")
    return names


def breakdown(pids: list, names: dict) -> None:
    """Mean PSS (anon / file) and RSS per kind of process."""
    groups: dict = {}
    for pid in pids:
        groups.setdefault(names.get(pid, "daemon/fork server/other"), []).append(rollup(pid))
    print(f"{'process':<26}{'n':>4}{'PSS':>9}{'anon':>9}{'file':>9}{'RSS':>9}  (MiB, mean)")
    for name, rows in sorted(groups.items()):
        def mean(field):
            return sum(row.get(field, 0) for row in rows) / len(rows) / 1024
        print(f"{name:<26}{len(rows):>4}{mean('Pss'):>9.1f}{mean('Pss_Anon'):>9.1f}"
              f"{mean('Pss_File'):>9.1f}{mean('Rss'):>9.1f}")


def main() -> None:
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    base = tempfile.mkdtemp(prefix="ma-many-", dir="/tmp")
    daemon = Daemon(os.path.join(base, "data"))
    try:
        daemon.start()
        sync = Sync(daemon)
        pairs = []
        for s in range(sessions):
            alpha, beta = os.path.join(base, f"a{s}"), os.path.join(base, f"b{s}")
            for i in range(files):
                path = os.path.join(alpha, f"d{i // 500}", f"f{i}.txt")
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as stream:
                    stream.write(f"session {s} file {i}\n")
            pairs.append((alpha, beta))
        started = time.monotonic()
        ids = [sync.create(alpha, beta) for alpha, beta in pairs]
        pending = set(ids)
        while pending:
            for state in sync.list():
                if state.identifier in pending and state.beta.files == files \
                        and state.status == "watching":
                    pending.discard(state.identifier)
            if time.monotonic() - started > 1800:
                raise SystemExit(f"{len(pending)} sessions did not converge in 30 min")
            time.sleep(1)
        print(f"{sessions} sessions x {files} files converged in {time.monotonic() - started:.0f} s")
        time.sleep(2)
        pids = processes_of(daemon.data_dir)
        total = sum(pss_kib(pid) for pid in pids)
        print(f"daemon tree: {len(pids)} processes, PSS {total / 1024:.0f} MiB")
        breakdown(pids, actor_names(daemon.log_path))
    finally:
        for pid in processes_of(daemon.data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["rm", "-rf", base], check=False)


if __name__ == "__main__":
    main()
