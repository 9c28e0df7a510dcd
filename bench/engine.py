"""Sync-engine benchmark: scanning and reconcile on a generated 100k-file tree.

Usage: ``.venv/bin/python bench/engine.py [--json out.json] [--only NAME ...] [--repeat N]``

The tree (100,000 files of 1-16 KiB in 5,000 leaf directories, 50 x 100) is generated once under
``/dev/shm/mutagen-actors-bench`` (tmpfs) and reused while its marker file matches the generator
version. Scenarios register themselves by name with ``@scenario(name, target_seconds)``; a
scenario receives the shared ``Context`` and returns the seconds it measured (the runner reports
the best of ``--repeat`` runs for repeatable scenarios). Other bench modules can import this one,
register more scenarios and call ``main()``.

Output: a table (scenario, seconds, target, pass/miss) and, with ``--json PATH``, a JSON document
``{"machine": {...}, "results": [{"scenario", "seconds", "target", "ok", "detail"}]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

try:
    from mutagen_actors.actors.sync.cache import DigestCache
    from mutagen_actors.actors.sync.scan import scan
    from mutagen_actors.actors.sync.settings import HashAlgorithm, Mode, PermissionsMode, SymlinkMode
except ImportError:  # pragma: no cover
    sys.exit("run with the project's venv: .venv/bin/python bench/engine.py")

BENCH_DIR = os.environ.get("MUTAGEN_ACTORS_BENCH_DIR", "/dev/shm/mutagen-actors-bench")
GENERATOR_VERSION = "tree-v1-50x100x20"
TOP_DIRS, SUB_DIRS, FILES_PER_DIR = 50, 100, 20


@dataclass
class Scenario:
    name: str
    target: Optional[float]
    run: Callable[["Context"], "float | tuple[float, str]"]
    repeatable: bool = True


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, target: Optional[float] = None, *, repeatable: bool = True):
    """Register a benchmark scenario (function taking the Context, returning seconds or
    ``(seconds, detail)``)."""

    def register(function):
        SCENARIOS[name] = Scenario(name, target, function, repeatable)
        return function

    return register


@dataclass
class Context:
    tree: str
    state: dict = field(default_factory=dict)

    def scan(self, **kwargs):
        kwargs.setdefault("ignorer", None)
        return scan(
            self.tree,
            hash=HashAlgorithm.XXH128,
            symlink_mode=SymlinkMode.PORTABLE,
            permissions_mode=PermissionsMode.PORTABLE,
            **kwargs,
        )


def generate_tree(base: str = BENCH_DIR) -> str:
    """Create (or reuse) the 100k-file tree; returns its root."""
    tree = os.path.join(base, "tree")
    marker = os.path.join(base, "GENERATED")
    try:
        with open(marker) as handle:
            if handle.read().strip() == GENERATOR_VERSION:
                return tree
    except FileNotFoundError:
        pass
    import shutil

    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(tree)
    rng = random.Random(1234)
    pool = os.urandom(1 << 21)
    started = time.perf_counter()
    for top in range(TOP_DIRS):
        top_path = os.path.join(tree, f"d{top:02d}")
        os.mkdir(top_path)
        for sub in range(SUB_DIRS):
            directory = os.path.join(top_path, f"s{sub:03d}")
            os.mkdir(directory)
            for number in range(FILES_PER_DIR):
                size = rng.randint(1024, 16384)
                offset = rng.randrange(0, len(pool) - size)
                fd = os.open(os.path.join(directory, f"f{number:02d}.dat"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, pool[offset:offset + size])
                finally:
                    os.close(fd)
    with open(marker, "w") as handle:
        handle.write(GENERATOR_VERSION + "\n")
    print(f"generated {TOP_DIRS * SUB_DIRS * FILES_PER_DIR} files in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return tree


def _timed(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


# -- scenarios ------------------------------------------------------------------------------------

@scenario("bare scandir+lstat walk", None)
def bare_walk(ctx: Context):
    def walk():
        count = 0
        stack = [ctx.tree]
        while stack:
            with os.scandir(stack.pop()) as listing:
                for item in listing:
                    item.stat(follow_symlinks=False)
                    count += 1
                    if item.is_dir(follow_symlinks=False):
                        stack.append(item.path)
        return count

    seconds, count = _timed(walk)
    return seconds, f"{count} entries"


@scenario("bare open+fstat+read+xxh3+close of every file", None)
def bare_read(ctx: Context):
    """The floor of a cold scan: the system calls it needs per file, with no snapshot built."""
    from mutagen_actors.actors.sync.hashing import one_shot

    digest = one_shot(HashAlgorithm.XXH128)
    directory_flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    file_flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

    def walk():
        count = 0
        stack = [os.open(ctx.tree, directory_flags)]
        while stack:
            dfd = stack.pop()
            try:
                with os.scandir(dfd) as listing:
                    for item in listing:
                        if item.is_dir(follow_symlinks=False):
                            stack.append(os.open(item.name, directory_flags, dir_fd=dfd))
                            continue
                        fd = os.open(item.name, file_flags, dir_fd=dfd)
                        try:
                            digest(os.read(fd, os.fstat(fd).st_size + 1))
                        finally:
                            os.close(fd)
                        count += 1
            finally:
                os.close(dfd)
        return count

    seconds, count = _timed(walk)
    return seconds, f"{count} files read"


@scenario("cold scan (empty cache)", None)
def cold_scan(ctx: Context):
    seconds, result = _timed(lambda: ctx.scan(cache=DigestCache(HashAlgorithm.XXH128)))
    ctx.state["cold"] = result
    return seconds, f"{result.counts.files} files, {result.hashed} hashed"


@scenario("warm rescan with cache", 0.6)
def warm_scan(ctx: Context):
    if "cold" not in ctx.state:
        cold_scan(ctx)
    cache = ctx.state["cold"].cache
    seconds, result = _timed(lambda: ctx.scan(cache=cache))
    ctx.state["warm"] = result
    return seconds, f"{result.hashed} hashed"


@scenario("warm rescan with cache, 3 ignore patterns", None)
def warm_scan_ignores(ctx: Context):
    from mutagen_actors.actors.sync.ignore import compile_ignores
    from mutagen_actors.actors.sync.settings import IgnoreSyntax

    if "cold" not in ctx.state:
        cold_scan(ctx)
    ignorer = ctx.state.get("ignorer")
    if ignorer is None:
        ignorer = ctx.state["ignorer"] = compile_ignores(["*.pyc", "node_modules/", "/build"], IgnoreSyntax.MUTAGEN, True)
        ctx.state["ignored-scan"] = ctx.scan(cache=ctx.state["cold"].cache, ignorer=ignorer)
    # A session's full rescan passes its previous result, which carries the ignore cache.
    previous = ctx.state["ignored-scan"]
    seconds, result = _timed(lambda: ctx.scan(cache=previous.cache, ignorer=ignorer, previous=previous))
    ctx.state["ignored-scan"] = result
    return seconds, f"{result.hashed} hashed"


@scenario("incremental scan, 100 dirty paths", 0.02)
def incremental_scan(ctx: Context):
    if "warm" not in ctx.state:
        warm_scan(ctx)
    previous = ctx.state["warm"]
    rng = random.Random(ctx.state.setdefault("round", 0))
    ctx.state["round"] += 1
    dirty = []
    for _ in range(100):
        path = f"d{rng.randrange(TOP_DIRS):02d}/s{rng.randrange(SUB_DIRS):03d}/f{rng.randrange(FILES_PER_DIR):02d}.dat"
        with open(os.path.join(ctx.tree, path), "ab") as handle:
            handle.write(b"x")
        dirty.append(path)
    seconds, result = _timed(lambda: ctx.scan(cache=previous.cache, previous=previous, dirty=dirty))
    ctx.state["warm"] = result
    return seconds, f"{result.hashed} hashed"


@scenario("reconcile unchanged 100k, same object", 0.3)
def reconcile_same(ctx: Context):
    from mutagen_actors.actors.sync.reconcile import reconcile

    if "warm" not in ctx.state:
        warm_scan(ctx)
    snapshot = ctx.state["warm"].root
    seconds, result = _timed(lambda: reconcile(snapshot, snapshot, snapshot, Mode.TWO_WAY_SAFE))
    changes = len(result.alpha_changes) + len(result.beta_changes) + len(result.conflicts)
    return seconds, f"{changes} changes"


@scenario("reconcile unchanged 100k, equal distinct objects", 0.3)
def reconcile_distinct(ctx: Context):
    from mutagen_actors.actors.sync.reconcile import reconcile

    if "distinct" not in ctx.state:
        cache = DigestCache(HashAlgorithm.XXH128)
        ctx.state["distinct"] = [ctx.scan(cache=cache).root for _ in range(3)]
    ancestor, alpha, beta = ctx.state["distinct"]
    assert ancestor == alpha == beta and ancestor is not alpha and alpha is not beta
    seconds, result = _timed(lambda: reconcile(ancestor, alpha, beta, Mode.TWO_WAY_SAFE))
    changes = len(result.alpha_changes) + len(result.beta_changes) + len(result.conflicts)
    return seconds, f"{changes} changes"


@scenario("transition, 10,000 new 4 KiB files in 500 dirs", None)
def transition_create(ctx: Context):
    import shutil

    from mutagen_actors.actors.sync.hashing import digest_bytes
    from mutagen_actors.actors.sync.model import Change, Entry
    from mutagen_actors.actors.sync.staging import Staging
    from mutagen_actors.actors.sync.transition import transition

    base = os.path.join(os.path.dirname(ctx.tree), "transition")
    shutil.rmtree(base, ignore_errors=True)
    root = os.path.join(base, "root")
    os.makedirs(root)
    staging = Staging(os.path.join(base, "staging"), HashAlgorithm.XXH128)
    pool = os.urandom(1 << 20)
    directories = {}
    for number in range(10_000):
        data = pool[number * 97:number * 97 + 4096]
        digest = digest_bytes(data, HashAlgorithm.XXH128)
        staging.receive(digest, [data])
        directories.setdefault(f"d{number % 500:03d}", {})[f"f{number:05d}"] = Entry.file(digest)
    changes = [Change(name, None, Entry.directory(files)) for name, files in directories.items()]
    cache = DigestCache(HashAlgorithm.XXH128)
    try:
        seconds, result = _timed(lambda: transition(root, changes, cache=cache, staging=staging))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return seconds, f"{len(result.problems)} problems"


# -- runner ---------------------------------------------------------------------------------------

def run(names: list[str], repeat: int, ctx: Context) -> list[dict]:
    results = []
    for name in names:
        entry = SCENARIOS[name]
        best = None
        detail = ""
        for _ in range(repeat if entry.repeatable else 1):
            try:
                outcome = entry.run(ctx)
            except Exception as error:  # a missing module or a failure is reported, not fatal
                detail = f"error: {type(error).__name__}: {error}"
                best = None
                break
            seconds, detail = outcome if isinstance(outcome, tuple) else (outcome, "")
            best = seconds if best is None else min(best, seconds)
        ok = None if best is None or entry.target is None else best <= entry.target
        results.append({"scenario": name, "seconds": best, "target": entry.target, "ok": ok, "detail": detail})
    return results


def print_table(results: list[dict]) -> None:
    width = max(len(r["scenario"]) for r in results)
    print(f"{'scenario':<{width}}  {'time':>10}  {'target':>8}  {'result':<6}  detail")
    for r in results:
        time_text = "-" if r["seconds"] is None else f"{r['seconds'] * 1000:.1f} ms"
        target = "-" if r["target"] is None else f"{r['target'] * 1000:.0f} ms"
        verdict = "-" if r["ok"] is None else ("pass" if r["ok"] else "MISS")
        print(f"{r['scenario']:<{width}}  {time_text:>10}  {target:>8}  {verdict:<6}  {r['detail']}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    parser.add_argument("--repeat", type=int, default=3, help="runs per repeatable scenario (best is kept)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, entry in SCENARIOS.items():
            print(name if entry.target is None else f"{name} (target {entry.target * 1000:.0f} ms)")
        return 0
    names = args.only or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)} (see --list)")
    ctx = Context(generate_tree())
    results = run(names, args.repeat, ctx)
    print_table(results)
    if args.json:
        document = {
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
            "tree": ctx.tree,
            "results": results,
        }
        with open(args.json, "w") as handle:
            json.dump(document, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
