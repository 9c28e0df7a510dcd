"""Ignore matching throughput on a generated 100k-path tree (not a test; run by hand).

    .venv/bin/python bench/ignore_bench.py

Prints paths/second for both syntaxes with a typical pattern list, walking the tree the way the
scanner does (directories before their contents), and for comparison pathspec's GitIgnoreSpec
with its default and re2 backends (gitignore semantics, so only a speed reference).
"""

from __future__ import annotations

import time

from mutagen_actors.actors.sync.ignore import compile_ignores
from mutagen_actors.actors.sync.settings import IgnoreSyntax

MUTAGEN_PATTERNS = [
    ".DS_Store", "*.pyc", "*.o", "node_modules/", "/build/", "*.log", "!important.log",
    "__pycache__/", "*.sw[op]", "tmp/**", "{dist,out}/", ".idea/",
]
DOCKER_PATTERNS = [
    "**/.DS_Store", "**/*.pyc", "**/*.o", "**/node_modules", "build", "**/*.log",
    "!**/important.log", "**/__pycache__", "dist", "out", "vendor", "!vendor/keep",
]


def tree(files: int = 100_000, directories: int = 5_000) -> list[tuple[str, bool]]:
    """Paths in walk order: 5,000 directories three levels deep, 20 files each."""
    names = ["main.py", "util.c", "util.o", "README.md", "data.json", "x.pyc", "run.log", "a.txt"]
    paths: list[tuple[str, bool]] = []
    per = files // directories
    for d in range(directories):
        top, mid, low = d % 10, (d // 10) % 50, d // 500
        directory = f"pkg{top}/mod{mid}/part{low}"
        paths.append((directory, True))
        for f in range(per):
            paths.append((f"{directory}/{f}_{names[f % len(names)]}", False))
    return paths


def measure(label: str, check, paths) -> None:
    start = time.perf_counter()
    ignored = sum(1 for path, directory in paths if check(path, directory))
    elapsed = time.perf_counter() - start
    print(f"{label:42s} {len(paths) / elapsed:>12,.0f} paths/s  ({ignored} ignored, {elapsed * 1000:.0f} ms)")


def main() -> None:
    paths = tree()
    for syntax, patterns in ((IgnoreSyntax.MUTAGEN, MUTAGEN_PATTERNS), (IgnoreSyntax.DOCKER, DOCKER_PATTERNS)):
        ignorer = compile_ignores(patterns, syntax, ignore_vcs=True)
        measure(f"mutagen-actors {syntax.value} syntax", ignorer.ignored, paths)
    try:
        import pathspec
    except ImportError:  # pragma: no cover
        return
    for backend in ("simple", "re2"):
        try:
            spec = pathspec.GitIgnoreSpec.from_lines(MUTAGEN_PATTERNS, backend=backend)
        except Exception as error:  # backend missing
            print(f"pathspec {backend}: unavailable ({error})")
            continue
        measure(f"pathspec GitIgnoreSpec backend={backend}", lambda p, d: spec.match_file(p + "/" if d else p), paths)


if __name__ == "__main__":
    main()
