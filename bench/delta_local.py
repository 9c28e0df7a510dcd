"""A changed large file in a local->local session, through the real daemon and actors.

Usage (from the repository, under the shared lock)::

    flock /tmp/mutagen-bench.lock .venv/bin/python bench/delta_local.py [--size-mib 100]

A private daemon (data directory and roots on /dev/shm, watching off), one session alpha ->
beta. Timed with ``sync flush`` (scan, stage, transition, until the flush returns):

- ``whole``: the initial sync of a new ``--size-mib`` random file (nothing at that path on beta,
  so it travels whole through the actors: sender -> stager -> receiver);
- ``delta``: one byte changed in the middle, ``--repeat`` times (the receiver's copy is the base).

Content bytes per pass are read from the stager's ``staging done`` log lines. Everything started
is stopped by pid; the directory is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from foundation.conftest import Daemon, processes_of  # noqa: E402
from syncsession.conftest import Sync  # noqa: E402

MIB = 1 << 20


def staging_done(daemon: Daemon) -> list:
    with open(daemon.log_path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if '"staging done"' in line]


def flush_seconds(sync: Sync, identifier: str) -> float:
    started = time.perf_counter()
    sync.flush(identifier, timeout=300)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * MIB
    base = tempfile.mkdtemp(prefix="ma-dl-", dir="/dev/shm")
    daemon = Daemon(os.path.join(base, "data"))
    try:
        daemon.start()
        sync = Sync(daemon)
        alpha, beta = os.path.join(base, "alpha"), os.path.join(base, "beta")
        os.mkdir(alpha)
        os.mkdir(beta)
        path = os.path.join(alpha, "big.bin")
        identifier = sync.create(alpha, beta, watch_mode="no-watch")
        sync.flush(identifier, timeout=120)  # the first cycle (empty roots)
        with open(path, "wb") as stream:  # new on alpha, nothing on beta: travels whole
            stream.write(os.urandom(size))
        rows = [("whole (no base)", flush_seconds(sync, identifier))]
        for _ in range(args.repeat):
            with open(path, "r+b") as stream:
                stream.seek(size // 2)
                byte = stream.read(1)
                stream.seek(size // 2)
                stream.write(bytes([byte[0] ^ 1]))
            rows.append(("delta (1 byte)", flush_seconds(sync, identifier)))
        with open(path, "rb") as one, open(os.path.join(beta, "big.bin"), "rb") as other:
            assert one.read() == other.read(), "the roots differ"
        done = staging_done(daemon)
        print(f"file {args.size_mib} MiB, load average {os.getloadavg()[0]:.2f}")
        for (name, seconds), event in zip(rows, done[-len(rows):]):
            print(f"{name:<16} flush {seconds:6.3f} s  content bytes {event['content_bytes']:>12,}"
                  f"  delta files {event['delta_files']}")
    finally:
        for pid in processes_of(daemon.data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
