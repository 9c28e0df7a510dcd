"""``agent.transfer.local_copies``: which files of the root hold wanted content, per the digest
cache, found in one pass that keeps only the matches (pure over a ``DigestCache``)."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.agent.transfer import local_copies

A, B, C, D = (bytes([n]) * 16 for n in (1, 2, 3, 4))


def cache_of(records: dict[str, bytes]) -> DigestCache:
    cache = DigestCache()
    for inode, (path, digest) in enumerate(records.items(), 1):
        cache.put(path, 1, 1, inode, 0o100644, digest)
    return cache


@pytest.mark.parametrize("records, wanted, limit, expected", [
    ({}, {A}, 4, {}),
    ({"a": A}, set(), 4, {}),
    ({"a": A, "b": B}, {C}, 4, {}),
    ({"a": A, "d/b": B, "d/e/c": A}, {A}, 4, {A: ["a", "d/e/c"]}),
    ({"a": A, "b": B, "c": C}, {A, C, D}, 4, {A: ["a"], C: ["c"]}),
    ({f"x/{n}": A for n in range(6)}, {A}, 4, {A: ["x/0", "x/1", "x/2", "x/3"]}),
    ({f"x/{n}": A for n in range(3)}, {A}, 1, {A: ["x/0"]}),
])
def test_local_copies(records, wanted, limit, expected):
    assert local_copies(cache_of(records), wanted, limit) == expected


def test_local_copies_agrees_with_the_cache_reverse_map():
    cache = cache_of({f"d{n % 7}/f{n}": bytes([n % 5]) * 16 for n in range(200)})
    wanted = {bytes([n]) * 16 for n in (0, 3, 9)}
    found = local_copies(cache, wanted, limit=1000)
    assert found == {d: cache.paths_for(d) for d in wanted if cache.paths_for(d)}
