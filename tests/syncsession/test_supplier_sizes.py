"""``Supplier.sizes`` (the answer to ``FileSizes``): for every path, the size its digest-cache
record says, -1 without one; the same as asking the cache path by path, whatever the order of
the paths and wherever they are in the tree."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.agent.transfer import Supplier

RECORDS = {"top.txt": 7, "a/x": 0, "a/y": 1 << 40, "a/b/x": 12345, "c/d/e/f": 3}


def _cache() -> DigestCache:
    cache = DigestCache()
    for path, size in RECORDS.items():
        cache.put(path, size, 1, 2, 0o100644, b"\x01" * 16)
    return cache


@pytest.mark.parametrize("paths", [
    [],
    ["top.txt"],
    sorted(RECORDS),
    list(reversed(sorted(RECORDS))),
    ["a/x", "a/b/x", "a/y", "top.txt", "a/x"],  # directories revisited, a path twice
    ["missing", "a/missing", "a/b", "nowhere/x", "a/", "a/b/x/", "", "c/d/e/f"],
])
def test_sizes_are_the_cache_records_sizes(paths):
    cache = _cache()
    expected = [cache.get(path)[0] if cache.get(path) is not None else -1 for path in paths]
    assert Supplier(SimpleNamespace(cache=cache)).sizes(paths) == expected
    assert expected == [RECORDS.get(path, -1) for path in paths]
