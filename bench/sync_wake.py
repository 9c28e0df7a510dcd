"""What hibernation costs an edit: edit-to-visible latency of the first edit after the stager and
the transitioner hibernated ("cold": the cycle wakes them), against an edit right after it
("warm": they are up).

Usage: python bench/sync_wake.py [files] [rounds]
Starts a private daemon whose on-demand actors hibernate after ``IDLE_EXIT`` seconds (set through
``MUTAGEN_ACTORS_IDLE_EXIT`` so a round takes seconds, not 30 s), creates a tree of ``files``
files on alpha and a session, waits for the first sync; then per round: waits (deadline) until
both job actors hibernate, edits one file on alpha and times until beta shows it (polled every
0.5 ms), then edits another and times that. Prints p50/p90/max of both. Stops everything it
started by pid.
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

from mutagen_actors.supervisor.child_spec import IDLE_EXIT_VARIABLE  # noqa: E402
from mutagen_actors.wire.messages import control  # noqa: E402

IDLE_EXIT = 1.0


def hibernating(sync: Sync, identifier: str) -> bool:
    status = sync.request(control.GetDaemonStatus())
    session = next(s for s in status.sessions if s.id == identifier)
    return all(a.state == "hibernating" for a in session.actors
               if a.id in ("stager", "transitioner"))


def edit_to_visible(alpha: str, beta: str, relative: str, content: bytes) -> float:
    with open(os.path.join(alpha, relative), "wb") as stream:
        stream.write(content)
    started = time.monotonic()
    target = os.path.join(beta, relative)
    while True:
        try:
            with open(target, "rb") as stream:
                if stream.read() == content:
                    return time.monotonic() - started
        except FileNotFoundError:
            pass
        if time.monotonic() - started > 10:
            raise SystemExit(f"{relative} not visible after 10 s")
        time.sleep(0.0005)


def summary(name: str, values: list) -> str:
    values = sorted(values)
    q = statistics.quantiles(values, n=10) if len(values) > 1 else values * 9
    return (f"{name}: p50 {statistics.median(values) * 1000:.1f} ms, p90 {q[8] * 1000:.1f} ms, "
            f"max {values[-1] * 1000:.1f} ms ({len(values)} edits)")


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    base = tempfile.mkdtemp(prefix="ma-bench-", dir="/tmp")
    daemon = Daemon(os.path.join(base, "data"))
    alpha, beta = os.path.join(base, "alpha"), os.path.join(base, "beta")
    for i in range(files):
        path = os.path.join(alpha, f"d{i // 1000}", f"f{i}.txt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as stream:
            stream.write(f"file {i}\n")
    os.mkdir(beta)
    os.environ[IDLE_EXIT_VARIABLE] = str(IDLE_EXIT)
    try:
        daemon.start()
        del os.environ[IDLE_EXIT_VARIABLE]
        sync = Sync(daemon)
        identifier = sync.create(alpha, beta)
        while sync.state(identifier).beta.files < files:
            time.sleep(0.1)
        cold, warm = [], []
        for n in range(rounds):
            deadline = time.monotonic() + IDLE_EXIT + 30
            while not hibernating(sync, identifier):
                if time.monotonic() > deadline:
                    raise SystemExit("the job actors did not hibernate")
                time.sleep(0.05)
            cold.append(edit_to_visible(alpha, beta, f"d0/f{n % 100}.txt", f"cold {n}\n".encode()))
            time.sleep(0.05)  # past the echo cycle of that edit, well inside the idle delay
            warm.append(edit_to_visible(alpha, beta, f"d1/f{1000 + n % 100}.txt",
                                        f"warm {n}\n".encode()))
        print(f"{files} files, idle exit {IDLE_EXIT:g} s, {rounds} rounds")
        print(summary("first edit after hibernation (wakes both)", cold))
        print(summary("next edit (both awake)", warm))
        print(f"wake cost (p50 difference): "
              f"{(statistics.median(cold) - statistics.median(warm)) * 1000:.1f} ms")
    finally:
        os.environ.pop(IDLE_EXIT_VARIABLE, None)
        for pid in processes_of(daemon.data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["rm", "-rf", base], check=False)


if __name__ == "__main__":
    main()
