"""Bytes on the agent tunnel per message type, per scenario of ``suite.py``.

Usage (as root, from the repository, under the benchmark lock)::

    flock /tmp/mutagen-bench.lock .venv/bin/python bench/traffic.py [suite.py options]
        e.g. --files 10000 --only rename --peers

Runs ``suite.py`` unchanged, with ``MUTAGEN_ACTORS_TRAFFIC_LOG`` set for its daemon: the daemon
side of the agent tunnel then logs every DATA frame (``wire/tunnel.py``). Each scenario's window
runs from its start until the session has been quiet (no DATA frame) for ``QUIET`` seconds after
it, so the follow-up cycle (the next scan after a transition) is counted with the scenario that
caused it. Prints, per scenario: frames, payload bytes and bytes on the stream (after lz4,
frame headers included; ssh framing not included) by direction and message type.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench import suite  # noqa: E402
from mutagen_actors.wire.tunnel import TRAFFIC_LOG_ENV  # noqa: E402

QUIET = 2.0
LOG = ""  # set by main: a file in a temporary directory removed at the end
WINDOWS: list[tuple[str, int, int]] = []  # (scenario, start offset, end offset)


def _size() -> int:
    try:
        return os.path.getsize(LOG)
    except OSError:
        return 0


def _settle(deadline: float) -> None:
    """Wait until no frame was logged for ``QUIET`` seconds (or ``deadline``)."""
    last, since = _size(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        size = _size()
        if size != last:
            last, since = size, time.monotonic()
        elif time.monotonic() - since >= QUIET:
            return


class TrafficBench(suite.Bench):
    def run(self) -> None:
        for name in ("initial", "nochange", "touch100", "onebyte", "memory", "rename", "latency"):
            step = getattr(self, name)

            def wrapped(step=step, name=name):
                start = _size()
                try:
                    step()
                finally:
                    _settle(time.monotonic() + 60)
                    WINDOWS.append((name, start, _size()))

            wrapped.__name__ = name
            setattr(self, name, wrapped)
        super().run()


def summarize() -> None:
    with open(LOG, "rb") as handle:
        data = handle.read()
    for name, start, end in WINDOWS:
        table = collections.defaultdict(lambda: [0, 0, 0])
        for line in data[start:end].splitlines():
            _, direction, kind, payload, stream = json.loads(line)
            row = table[(direction, kind)]
            row[0] += 1
            row[1] += payload
            row[2] += stream
        if not table:
            continue
        total = sum(r[2] for r in table.values())
        print(f"\n{name}: {total:,} bytes on the tunnel (after lz4)")
        print(f"  {'direction':<9} {'message':<18} {'frames':>7} {'payload':>12} {'stream':>12}")
        for (direction, kind), (frames, payload, stream) in sorted(
                table.items(), key=lambda item: -item[1][2]):
            label = "to agent" if direction == "sent" else "from agent"
            print(f"  {label:<9} {kind:<18} {frames:>7} {payload:>12,} {stream:>12,}")


def main() -> int:
    global LOG
    directory = tempfile.mkdtemp(prefix="ma-traffic-")
    LOG = os.path.join(directory, "traffic.jsonl")
    os.environ[TRAFFIC_LOG_ENV] = LOG
    suite.Bench = TrafficBench
    try:
        code = suite.main(sys.argv[1:])
        summarize()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
