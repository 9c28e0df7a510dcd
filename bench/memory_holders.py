"""What one endpoint holds for a big tree: snapshot, digest cache, and what a big reply leaves.

Usage: python bench/memory_holders.py [files] [tree directory]
Builds (once) a tree of ``files`` small files laid out as bench/suite.py does (20 files per
directory, 500 directories per top directory), then in this process: a cold full scan through
``agent.endpoint.LocalEndpoint`` (as the agent does it), a warm full scan, the snapshot encoded
as the first scan reply would be, and the digest cache saved and loaded again. After each step
it prints VmRSS, the bytes Python's allocator holds in live blocks, and a deep size of the
snapshot and of the cache (objects reached from both counted once, in the snapshot).
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import time

from mutagen_actors.actors.sync.model import Entry
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.agent.memory import trim

MB = 1 << 20


def rss() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def make_tree(root: str, files: int) -> None:
    marker = os.path.join(root, ".complete")
    if os.path.exists(marker):
        return
    for index in range(files):
        directory = os.path.join(root, f"t{index // 10_000:02d}", f"s{(index // 20) % 500:03d}")
        if index % 20 == 0:
            os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, f"f{index % 20:02d}.dat"), "wb") as handle:
            handle.write(b"%d\n" % index)
    open(marker, "w").close()


def deep_size(obj, seen: set) -> int:
    """Bytes of ``obj`` and everything it references (not counting objects in ``seen``)."""
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None or isinstance(item, (bool, int)) and -5 <= item <= 256:
            continue
        seen.add(id(item))
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, Entry):
            stack.extend((item.contents, item.digest, item.target, item.problem))
        elif hasattr(item, "directories") and hasattr(item, "algorithm"):
            stack.append(item.directories)
            packed = getattr(item, "packed", None)
            if packed is not None:
                stack.append(packed)
    return total


def report(step: str, endpoint) -> None:
    """VmRSS of this process, then deep sizes computed in a forked child (the bookkeeping of a
    deep size would itself grow this process)."""
    gc.collect()
    trim()
    resident = rss()
    blocks = sys.getallocatedblocks()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        seen: set = set()
        sizes = [deep_size(endpoint.previous.root, seen) if endpoint.previous else 0,
                 deep_size(endpoint.cache, seen), deep_size(endpoint.history, seen), 0]
        if endpoint.previous is not None:
            sizes[3] = deep_size((endpoint.previous._ignore_memo, endpoint.previous._subtotals,
                                  endpoint.previous._problems), seen)
        os.write(writer, " ".join(str(size) for size in sizes).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as stream:
        snapshot, cache, history, other = (int(x) / MB for x in stream.read().split())
    os.waitpid(pid, 0)
    print(f"{step:<28} rss {resident / MB:6.1f} MB  blocks {blocks:>9,}  snapshot {snapshot:5.1f}  "
          f"cache {cache:5.1f}  older snapshots {history:5.1f}  memo+subtotals {other:5.1f} "
          f"(MB, shared counted once)", flush=True)


def main(argv: list[str]) -> int:
    files = int(argv[0]) if argv else 100_000
    tree = argv[1] if len(argv) > 1 else f"/tmp/memory-holders-{files}"
    started = time.perf_counter()
    make_tree(tree, files)
    print(f"tree {tree}: {files} files ({time.perf_counter() - started:.1f} s)", flush=True)
    with tempfile.TemporaryDirectory() as data:
        settings = EndpointSettings(root=tree, session="bench", side="alpha", data_directory=data)
        endpoint = LocalEndpoint(settings)
        os.makedirs(os.path.dirname(endpoint.cache_file), exist_ok=True)
        print(f"{'imports':<28} rss {rss() / MB:7.1f} MB", flush=True)
        started = time.perf_counter()
        endpoint.scan(True, None)
        print(f"cold scan {time.perf_counter() - started:.1f} s", flush=True)
        report("after cold scan", endpoint)
        started = time.perf_counter()
        endpoint.scan(True, None)
        print(f"warm scan {time.perf_counter() - started:.2f} s", flush=True)
        report("after warm full scan", endpoint)
        encoded = encode_snapshot(endpoint)
        print(f"snapshot message {len(encoded) / MB:.1f} MB", flush=True)
        decoded_size(encoded)
        del encoded
        report("after encoding the snapshot", endpoint)
        endpoint._cache_dirty = True
        started = time.perf_counter()
        endpoint.save_cache()
        print(f"cache saved {time.perf_counter() - started:.2f} s, "
              f"{os.path.getsize(endpoint.cache_file) / MB:.1f} MB", flush=True)
        from mutagen_actors.actors.sync.cache import DigestCache
        started = time.perf_counter()
        endpoint.cache = DigestCache.load(endpoint.cache_file, settings.hash)
        print(f"cache loaded {time.perf_counter() - started:.2f} s", flush=True)
        endpoint.previous = None
        endpoint.history.clear()
        report("cache loaded, no snapshot", endpoint)
        started = time.perf_counter()
        endpoint.scan(True, None)
        print(f"scan with loaded cache {time.perf_counter() - started:.2f} s", flush=True)
        report("after scan on loaded cache", endpoint)
    return 0


def decoded_size(encoded: bytes) -> None:
    """What a receiver of the snapshot (the reconciler) holds once it decoded it, and the
    decoding time (best of 3)."""
    import msgspec

    decoder = msgspec.msgpack.Decoder(Entry)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        root = decoder.decode(encoded)
        best = min(best, time.perf_counter() - started)
        size = deep_size(root, set())
        del root
    print(f"snapshot decoded {best:.3f} s (best of 3), {size / MB:.1f} MB", flush=True)


def encode_snapshot(endpoint) -> bytes:
    import msgspec

    return msgspec.msgpack.encode(endpoint.previous.root)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
