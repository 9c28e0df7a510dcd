"""Staging a changed large file: delta vs whole, through the real stager and endpoints.

Usage (from the repository, under the shared lock)::

    flock /tmp/mutagen-bench.lock .venv/bin/python bench/delta_staging.py [--size-mib 100]

On /dev/shm: the receiver holds a file of ``--size-mib`` random bytes, the sender the same file
with one byte changed (and, second case, 1 MiB rewritten in the middle). Each case is staged with
deltas (the default) and with deltas off (``agent.transfer.DELTA_MIN_SIZE`` raised), in process
(``tests/syncsession/pipeline.py``: the real ``StagerActor.run_job`` and two ``LocalEndpoint``s,
every message through the wire codec). Reported: wall time of the staging pass (best of
``--repeat``), content bytes that travelled (raw + literals) and bytes of the content messages'
frames (``Supply`` + ``Supplied``, signature included). No actor processes, no sockets: this is
the local->local cost; over SSH the frames are what crosses the wire.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from mutagen_actors.agent import transfer  # noqa: E402
from mutagen_actors.wire.messages import endpoint as m  # noqa: E402
from syncsession.pipeline import Pair, digest, write_file  # noqa: E402

MIB = 1 << 20


def run_case(base: bytes, new: bytes, use_delta: bool, repeat: int) -> tuple[float, int, int]:
    saved = transfer.DELTA_MIN_SIZE
    transfer.DELTA_MIN_SIZE = saved if use_delta else 1 << 62
    best = (float("inf"), 0, 0)
    try:
        for _ in range(repeat):
            directory = tempfile.mkdtemp(prefix="delta-staging-", dir="/dev/shm")
            pair = Pair(directory)
            try:
                write_file(pair.beta.root, "big.bin", base)
                write_file(pair.alpha.root, "big.bin", new)
                pair.start()
                pair.run(pair.alpha.scan_async(True))
                pair.run(pair.beta.scan_async(True))
                started = time.perf_counter()
                done = pair.run(pair.stage([m.StageItem("big.bin", digest(new))]))
                elapsed = time.perf_counter() - started
                assert pair.staged(new) == new
                frames = pair.wire_content_bytes()
                if elapsed < best[0]:
                    best = (elapsed, done["content_bytes"], frames)
            finally:
                pair.stop()
                shutil.rmtree(directory, ignore_errors=True)
    finally:
        transfer.DELTA_MIN_SIZE = saved
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    size = args.size_mib * MIB
    base = os.urandom(size)
    middle = size // 2
    cases = {
        "1 byte changed": base[:middle] + bytes([base[middle] ^ 1]) + base[middle + 1:],
        "1 MiB rewritten": base[:middle] + os.urandom(MIB) + base[middle + MIB:],
    }
    print(f"file {args.size_mib} MiB, load average {os.getloadavg()[0]:.2f}")
    print(f"{'case':<18} {'mode':<6} {'seconds':>8} {'content bytes':>14} {'frame bytes':>12} "
          f"{'% of file':>9}")
    for name, new in cases.items():
        for use_delta in (True, False):
            seconds, content, frames = run_case(base, new, use_delta, args.repeat)
            print(f"{name:<18} {'delta' if use_delta else 'whole':<6} {seconds:>8.3f} "
                  f"{content:>14,} {frames:>12,} {100 * frames / size:>8.2f}%")


if __name__ == "__main__":
    main()
