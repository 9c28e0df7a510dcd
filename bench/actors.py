"""Actor start-up time and idle memory of the daemon, its fork server and its actors.

Starts a daemon on a temporary data directory, then through the control socket (no CLI start-up
in the numbers): creates debug sessions, measures how long an actor takes to start (sequential
start of N actors / N), how long a kill -9'd actor takes to be running again, and the idle RSS
and PSS (/proc/PID/smaps_rollup; PSS is what the processes really cost together) of the daemon,
the fork server and the actors. Stops the daemon at the end.

    .venv/bin/python bench/actors.py [--actors 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from mutagen_actors.wire.messages.control import CreateDebugSession, GetDaemonStatus, Hello
from mutagen_actors.wire.stream import StreamClient
from mutagen_actors.wire.version import VERSION


def memory(pid: int) -> dict:
    values = {}
    with open(f"/proc/{pid}/smaps_rollup") as stream:
        for line in stream:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:"):
                values[parts[0][:-1].lower()] = int(parts[1]) / 1024  # MiB
    return values


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "mutagen_actors.cli", *args], env=env,
                          check=True, capture_output=True, text=True, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=20, help="actors in the big session")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    options = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="ma-bench-", dir="/tmp")
    data = os.path.join(scratch, "data")
    env = {**os.environ, "MUTAGEN_ACTORS_DATA_DIRECTORY": data}
    results = {}
    try:
        started = time.perf_counter()
        cli(env, "daemon", "start")
        results["daemon_start_s (CLI `daemon start`, until it answers)"] = time.perf_counter() - started
        client = StreamClient(os.path.join(data, "daemon", "daemon.sock"))
        client.connect(5)
        client.request(Hello(VERSION), 5)

        started = time.perf_counter()
        one = client.request(CreateDebugSession(1), 60).session
        results["first_session_create_ms (1 actor; record fsync, lazy imports)"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        many = client.request(CreateDebugSession(options.actors), 60).session
        elapsed = time.perf_counter() - started
        assert many.status == "running", many
        results[f"actor_start_ms (mean of {options.actors}, started one after another)"] = \
            elapsed * 1000 / options.actors

        restart_ms = []
        for actor in many.actors[:5]:
            killed_at = time.time()
            os.kill(actor.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status = client.request(GetDaemonStatus(), 5)
                session = next(s for s in status.sessions if s.id == many.id)
                now = next(a for a in session.actors if a.id == actor.id)
                if now.state == "running" and now.pid != actor.pid:
                    restart_ms.append((now.ready_at - killed_at) * 1000)
                    break
                time.sleep(0.005)
        results["restart_after_kill_9_ms (median of 5)"] = statistics.median(restart_ms)

        time.sleep(1.0)  # idle: let start-up allocations settle before reading memory
        status = client.request(GetDaemonStatus(), 5)
        actor_pids = [a.pid for s in status.sessions for a in s.actors]
        actor_memory = [memory(pid) for pid in actor_pids]
        daemon_memory = memory(status.pid)
        server_memory = memory(status.forkserver_pid)
        results["daemon_rss_mib"] = daemon_memory["rss"]
        results["daemon_pss_mib"] = daemon_memory["pss"]
        results["forkserver_rss_mib"] = server_memory["rss"]
        results["forkserver_pss_mib"] = server_memory["pss"]
        results["actor_rss_mib (mean)"] = statistics.mean(m["rss"] for m in actor_memory)
        results["actor_pss_mib (mean)"] = statistics.mean(m["pss"] for m in actor_memory)
        results["actors_measured"] = len(actor_pids)
        client.close()
        del one
    finally:
        subprocess.run([sys.executable, "-m", "mutagen_actors.cli", "daemon", "stop"], env=env,
                       capture_output=True, timeout=120)
        shutil.rmtree(scratch, ignore_errors=True)

    if options.json:
        print(json.dumps(results, indent=2))
        return
    width = max(len(k) for k in results)
    print(f"{'measure':<{width}}  value")
    for key, value in results.items():
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")


if __name__ == "__main__":
    main()
