"""The sender's raw reads (``agent.transfer._Parents.read``): one short read gives a small file
whole and its size; a bigger file, a budget cut, a resume offset and paths that differ only after
the open parent's text all answer what an ``fstat`` + exact read would, and malformed paths under
an already open parent are refused as the path check says."""

from __future__ import annotations

import asyncio
import os

import pytest

from mutagen_actors.actors.sync.settings import WatchMode
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.agent.supply_to import chunk_infos
from mutagen_actors.agent.transfer import FIRST_READ
from mutagen_actors.wire.messages.endpoint import ChunkInfo, SupplyRequest

SIZES = {"empty": 0, "one": 1, "small": 5000, "edge": FIRST_READ, "above": FIRST_READ + 1,
         "big": 3 * FIRST_READ + 17}


def content(name: str) -> bytes:
    return bytes((i * 7 + len(name)) % 251 for i in range(SIZES[name]))


@pytest.fixture
def alpha(tmp_path):
    root = tmp_path / "alpha"
    (root / "d").mkdir(parents=True)
    for name in SIZES:
        (root / "d" / name).write_bytes(content(name))
        (root / name).write_bytes(content(name))
    endpoint = LocalEndpoint(EndpointSettings(root=str(root), session="reads", side="alpha",
                                              data_directory=str(tmp_path / "data"),
                                              watch_mode=WatchMode.NO_WATCH))
    asyncio.run(endpoint.start())
    return endpoint


def expected(name: str, offset: int, budget: int) -> tuple[bytes, int, bool]:
    data = content(name)
    size = len(data)
    piece = data[offset:offset + max(budget, 1)]
    return piece, size, offset + len(piece) >= size


@pytest.mark.parametrize("name", sorted(SIZES))
@pytest.mark.parametrize("offset, budget", [
    (0, 1 << 20), (0, 1), (0, FIRST_READ - 1), (0, FIRST_READ), (0, 2 * FIRST_READ),
    (1, 1 << 20), (FIRST_READ, 1 << 20), (FIRST_READ + 1, 10), (10 ** 9, 1 << 20),
])
def test_a_read_answers_the_bytes_the_size_and_the_end(alpha, name, offset, budget):
    [chunk] = alpha.supply([SupplyRequest(f"d/{name}", b"0" * 16, offset)], budget)
    data, size, eof = expected(name, offset, budget)
    assert (chunk.data, chunk.size, chunk.eof, chunk.error) == (data, size, eof, "")


def test_a_batch_spends_its_budget_in_order(alpha):
    names = ["small", "one", "big", "edge", "small"]
    chunks = alpha.supply([SupplyRequest(f"d/{n}", b"0" * 16, 0) for n in names],
                          2 * FIRST_READ)
    # small + one + the first 2*FIRST_READ - 5001 bytes of big; then the budget is spent
    assert [c.path for c in chunks] == ["d/small", "d/one", "d/big"]
    assert [c.eof for c in chunks] == [True, True, False]
    assert chunks[2].data == content("big")[:2 * FIRST_READ - 5001]


@pytest.mark.parametrize("paths, refused", [
    (["d/one", "d/..", "d/small"], {"d/.."}),
    (["d/one", "d/.", "d/small"], {"d/."}),
    (["d/one", "d/", "d/small"], {"d/"}),
    (["one", "/one", "small"], {"/one"}),          # an absolute path after a root file
    (["one", "", "small"], {""}),                  # the root itself
    (["d/one", "d//small", "d/small"], {"d//small"}),
    (["d/one", "d/sm\x00all", "d/small"], {"d/sm\x00all"}),
])
def test_malformed_paths_under_an_open_parent_are_refused_alone(alpha, paths, refused):
    chunks = alpha.supply([SupplyRequest(p, b"0" * 16, 0) for p in paths], 1 << 20)
    assert [c.path for c in chunks] == paths
    for chunk in chunks:
        if chunk.path in refused:
            assert chunk.error.startswith("unable to read file: ") and chunk.data == b""
            assert chunk.eof
        else:
            assert (chunk.data, chunk.error) == (content(chunk.path.rpartition("/")[2]), "")


def test_chunk_infos_match_chunk_info_of(alpha):
    chunks = alpha.supply([SupplyRequest(f"d/{n}", b"0" * 16, 0) for n in sorted(SIZES)]
                          + [SupplyRequest("d/missing", b"1" * 16, 0)], 1 << 20)
    assert chunk_infos(chunks) == [ChunkInfo.of(c) for c in chunks]
