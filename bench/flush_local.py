"""No-change flush, local -> local: the time of ``sync flush`` on a synced tree, without SSH.

Usage (from the repository, under the benchmark lock)::

    flock /tmp/mutagen-bench.lock .venv/bin/python bench/flush_local.py [--files 100000]
        [--flushes 10] [--watch-mode portable] [--scan-mode accelerated]

The tree is ``suite.py``'s (cached on /dev/shm); it is copied twice (``cp -a``) to alpha and
beta, so the first cycle only adopts identical content. A private daemon (own data directory,
log level info) syncs them; once the first cycle is done, the script times ``--flushes``
flushes as one API request each (no CLI start-up) and as the CLI command a user types, and
prints min / median / max of each. Everything started is stopped by pid; the copies are removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from bench.suite import generate  # noqa: E402
from foundation.conftest import Daemon, processes_of, wait_until  # noqa: E402
from syncsession.conftest import Sync  # noqa: E402


class QuietDaemon(Daemon):
    level = "info"

    @property
    def env(self) -> dict:
        # byte code cached as in an installed package (see suite.py's Bench.env)
        env = {"PYTHONPYCACHEPREFIX": os.path.join(self.data_dir, "..", "pycache"), **super().env,
               "MUTAGEN_ACTORS_LOG_LEVEL": self.level}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env


def summary(times: list[float]) -> str:
    return (f"min {min(times) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms ({len(times)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--flushes", type=int, default=10)
    parser.add_argument("--watch-mode", default="portable")
    parser.add_argument("--scan-mode", default="accelerated")
    parser.add_argument("--empty-beta", action="store_true",
                        help="beta starts empty: the first cycle transfers the tree")
    parser.add_argument("--log-level", default="info")
    options = parser.parse_args()

    source, facts = generate(options.files)
    base = tempfile.mkdtemp(prefix="ma-flush-", dir="/dev/shm")
    daemon = QuietDaemon(os.path.join(base, "data"))
    try:
        alpha, beta = os.path.join(base, "alpha"), os.path.join(base, "beta")
        subprocess.run(["cp", "-a", source, alpha], check=True)
        if options.empty_beta:
            os.mkdir(beta)
        else:
            subprocess.run(["cp", "-a", source, beta], check=True)
        daemon.level = options.log_level
        daemon.start()
        sync = Sync(daemon)
        started = time.perf_counter()
        identifier = sync.create(alpha, beta, name="flushbench", watch_mode=options.watch_mode,
                                 scan_mode=options.scan_mode)
        wait_until(lambda: sync.state(identifier).successful_cycles >= 1
                   and sync.state(identifier).status == "watching", 900, interval=0.1,
                   what="the first cycle")
        print(f"tree: {facts['files']} files; first cycle after {time.perf_counter() - started:.1f} s"
              f"; load average {os.getloadavg()[0]:.2f}")
        api, cli = [], []
        for _ in range(options.flushes):
            begin = time.perf_counter()
            sync.flush(identifier, timeout=120)
            api.append(time.perf_counter() - begin)
        for _ in range(options.flushes):
            begin = time.perf_counter()
            result = daemon.cli("sync", "flush", "flushbench", timeout=120)
            cli.append(time.perf_counter() - begin)
            if result.returncode != 0:
                raise SystemExit(f"flush failed: {result.stdout}{result.stderr}")
        state = sync.state(identifier)
        print(f"flush (API): {summary(api)}")
        print(f"flush (CLI): {summary(cli)}")
        print(f"status {state.status}, last error {state.last_error!r}; "
              f"load average {os.getloadavg()[0]:.2f}")
    finally:
        for pid in processes_of(daemon.data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_until(lambda: not processes_of(daemon.data_dir), 20, what="daemon processes to end")
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
