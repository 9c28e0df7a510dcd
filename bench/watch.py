"""Watcher benchmark: start-up, memory, idle CPU and event-to-batch latency on a big tree.

Usage: ``.venv/bin/python bench/watch.py [--json out.json] [--edits 200] [--dir DIR]``

A tree of 100,000 empty-ish files in 5,000 directories (50 x 100 x 20) is generated once
under ``/dev/shm/mutagen-actors-bench/watch-tree`` (tmpfs; its own tree, so edits here never
disturb the engine benchmark's tree) and reused while its marker matches.

Measured in this process, for the native (inotify) watcher:

* start-up: ``await Watcher.start()`` on the tree (5,051 watches), and the RSS it added;
* idle CPU: process CPU time while the watcher waits 3 s for events that never come;
* latency: for each of ``--edits`` edits (a write to a random file, every 10th one a new
  file), the time from just before the write to the batch naming that path being returned
  by ``next_batch``: with the default 10 ms coalescing window and with none (raw delivery);
* re-establish: how long a full re-walk takes (what an overflow or root change costs).

Prints a table (metric, value, target, ok) and with ``--json PATH`` writes
``{"machine": {...}, "results": [{"metric", "value", "unit", "target", "ok"}]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time

try:
    from mutagen_actors.actors.sync.settings import WatchMode
    from mutagen_actors.actors.sync.watching import Watcher
except ImportError:  # pragma: no cover
    sys.exit("run with the project's venv: .venv/bin/python bench/watch.py")

BENCH_DIR = os.environ.get("MUTAGEN_ACTORS_BENCH_DIR", "/dev/shm/mutagen-actors-bench")
GENERATOR = "watch-tree-v1-50x100x20"
TOP, SUB, FILES = 50, 100, 20


def generate_tree(base: str) -> str:
    tree = os.path.join(base, "watch-tree")
    marker = os.path.join(base, "watch-tree.generated")
    try:
        with open(marker) as handle:
            if handle.read().strip() == GENERATOR:
                return tree
    except OSError:
        pass
    if os.path.exists(tree):
        import shutil

        shutil.rmtree(tree)
    began = time.perf_counter()
    for top in range(TOP):
        for sub in range(SUB):
            directory = os.path.join(tree, f"t{top:02d}", f"s{sub:03d}")
            os.makedirs(directory)
            for index in range(FILES):
                with open(os.path.join(directory, f"f{index:02d}.txt"), "w") as handle:
                    handle.write(f"{top} {sub} {index}\n")
    with open(marker, "w") as handle:
        handle.write(GENERATOR)
    print(f"generated {TOP * SUB * FILES} files in {TOP * (SUB + 1)} directories "
          f"in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    return tree


def rss_kib() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def drain(watcher: Watcher) -> None:
    while await watcher.next_batch(timeout=0.05) is not None:
        pass


async def latencies(watcher: Watcher, tree: str, edits: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    await drain(watcher)
    results = []
    for number in range(edits):
        top, sub = rng.randrange(TOP), rng.randrange(SUB)
        name = f"f{rng.randrange(FILES):02d}.txt" if number % 10 else f"new-{seed}-{number}.txt"
        relative = f"t{top:02d}/s{sub:03d}/{name}"
        path = os.path.join(tree, relative)
        began = time.perf_counter()
        with open(path, "a") as handle:
            handle.write("edit\n")
        while True:
            batch = await watcher.next_batch(timeout=5)
            if batch is None:
                raise RuntimeError(f"no batch for {relative} within 5 s")
            if relative in batch.paths or batch.rescan_all:
                break
        results.append(time.perf_counter() - began)
    return results


async def measure(tree: str, edits: int) -> list[dict]:
    results = []

    def add(metric, value, unit, target=None, lower_is_better=True):
        ok = None if target is None else (value <= target if lower_is_better else value >= target)
        results.append({"metric": metric, "value": value, "unit": unit, "target": target, "ok": ok})

    rss_before = rss_kib()
    watcher = Watcher(tree, mode=WatchMode.PORTABLE, polling_interval=10)
    began = time.perf_counter()
    await watcher.start()
    add("start-up (5,051 directories, 100k files)", time.perf_counter() - began, "s", 1.0)
    add("watches", watcher.statistics()["watches"], "", None)
    add("RSS added by start-up", (rss_kib() - rss_before) / 1024, "MiB", 20)

    cpu = time.process_time()
    wall = time.perf_counter()
    assert await watcher.next_batch(timeout=3) is None
    idle = (time.process_time() - cpu) / (time.perf_counter() - wall) * 100
    add("idle CPU while watching", idle, "% of a core", 1.0)

    timed = await latencies(watcher, tree, edits, seed=1)
    add(f"latency p50, 10 ms window ({edits} edits)", percentile(timed, 0.5) * 1000, "ms", 15)
    add(f"latency p99, 10 ms window ({edits} edits)", percentile(timed, 0.99) * 1000, "ms", 50)
    add("latency mean, 10 ms window", statistics.mean(timed) * 1000, "ms", None)
    await watcher.stop()

    raw = Watcher(tree, mode=WatchMode.PORTABLE, polling_interval=10, coalesce=0)
    await raw.start()
    timed = await latencies(raw, tree, edits, seed=2)
    add(f"latency p50, no window ({edits} edits)", percentile(timed, 0.5) * 1000, "ms", 5)
    add(f"latency p99, no window ({edits} edits)", percentile(timed, 0.99) * 1000, "ms", 20)
    began = time.perf_counter()
    raw._reestablish("benchmark")  # the cost of an overflow or root change: a full re-walk
    add("re-establish after overflow (re-walk)", time.perf_counter() - began, "s", 1.0)
    add("RSS of the process after both runs", rss_kib() / 1024, "MiB", None)
    await raw.stop()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--dir", default=BENCH_DIR, help="where the tree lives (tmpfs)")
    args = parser.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    tree = generate_tree(args.dir)
    results = asyncio.run(measure(tree, args.edits))

    width = max(len(r["metric"]) for r in results)
    print(f"{'metric':<{width}}  {'value':>10}  {'unit':<12} {'target':>8}  ok")
    for r in results:
        value = f"{r['value']:.3f}" if isinstance(r["value"], float) else str(r["value"])
        target = "" if r["target"] is None else f"{r['target']:g}"
        ok = "" if r["ok"] is None else ("pass" if r["ok"] else "MISS")
        print(f"{r['metric']:<{width}}  {value:>10}  {r['unit']:<12} {target:>8}  {ok}")
    if args.json:
        document = {
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count(), "tree": tree},
            "results": results,
        }
        with open(args.json, "w") as handle:
            json.dump(document, handle, indent=2)
    return 0 if all(r["ok"] is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
