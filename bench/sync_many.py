"""Many sessions on one daemon: every one converges, and the memory of the whole daemon tree.

Usage: python bench/sync_many.py [sessions] [files per session]
Creates ``sessions`` local-to-local sessions of ``files`` files each (all watching), waits until
every beta root holds every file, sampling the PSS (``/proc/PID/smaps_rollup``) summed over the
daemon's processes (daemon, fork server, actors) every ``SAMPLE`` seconds meanwhile (the peak),
then waits for steady state: every stager and transitioner hibernating (their idle exit,
``MUTAGEN_ACTORS_IDLE_EXIT``, 30 s unless set), with a deadline, and reports the PSS there, with
a breakdown per kind of process. Stops everything it started by pid.
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

from mutagen_actors.supervisor.child_spec import idle_exit_setting  # noqa: E402
from mutagen_actors.wire.messages import control  # noqa: E402

SAMPLE = 0.5  # seconds between PSS samples during convergence
ON_DEMAND = ("stager", "transitioner")


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


def tree_pss_kib(data_dir: str) -> tuple[int, int]:
    """(PSS summed over the daemon tree in KiB, number of processes)."""
    pids = processes_of(data_dir)
    return sum(pss_kib(pid) for pid in pids), len(pids)


def awake_job_actors(sync: Sync) -> int:
    """How many stager/transitioner actors are not hibernating."""
    status = sync.request(control.GetDaemonStatus())
    return sum(1 for session in status.sessions for actor in session.actors
               if actor.id in ON_DEMAND and actor.state != "hibernating")


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
        peak = (0, 0)
        ids = []
        for alpha, beta in pairs:
            ids.append(sync.create(alpha, beta))
            peak = max(peak, tree_pss_kib(daemon.data_dir))
        pending = set(ids)
        while pending:
            for state in sync.list():
                if state.identifier in pending and state.beta.files == files \
                        and state.status == "watching":
                    pending.discard(state.identifier)
            if time.monotonic() - started > 1800:
                raise SystemExit(f"{len(pending)} sessions did not converge in 30 min")
            peak = max(peak, tree_pss_kib(daemon.data_dir))
            time.sleep(SAMPLE)
        converged = time.monotonic()
        print(f"{sessions} sessions x {files} files converged in {converged - started:.0f} s")
        print(f"peak during convergence (sampled every {SAMPLE:g} s): PSS "
              f"{peak[0] / 1024:.0f} MiB, {peak[1]} processes")
        limit = idle_exit_setting() + 60
        while awake_job_actors(sync):
            if time.monotonic() - converged > limit:
                raise SystemExit(f"{awake_job_actors(sync)} stagers/transitioners still awake "
                                 f"{limit:g} s after convergence")
            time.sleep(SAMPLE)
        print(f"steady state (every stager and transitioner hibernating) "
              f"{time.monotonic() - converged:.0f} s after convergence")
        pids = processes_of(daemon.data_dir)
        total = sum(pss_kib(pid) for pid in pids)
        print(f"daemon tree at steady state: {len(pids)} processes, PSS {total / 1024:.0f} MiB")
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
