"""One ``Supply`` of many files (the sending endpoint keeps the last parent directory open
between the files of a batch): every file is read whole and right, whatever the order of the
directories, and a bad path among good ones is refused alone, without reading outside the root.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from mutagen_actors.actors.sync.settings import WatchMode
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import SupplyRequest

from .conftest import write


@pytest.fixture
def alpha(tmp_path):
    root = str(tmp_path / "alpha")
    os.mkdir(root)
    endpoint = LocalEndpoint(EndpointSettings(root=root, session="supply_test", side="alpha",
                                              data_directory=str(tmp_path / "data"),
                                              watch_mode=WatchMode.NO_WATCH))
    asyncio.run(endpoint.start())
    write(str(tmp_path), "outside/secret.txt", "secret")
    os.symlink(str(tmp_path / "outside"), os.path.join(root, "link"))
    for directory in ("a", "a/b", "c"):
        for number in range(3):
            write(root, f"{directory}/f{number}.txt", f"{directory}/{number}" * (number + 1))
    write(root, "top.txt", "top")
    return endpoint


def _content(path: str) -> bytes:
    directory, _, name = path.rpartition("/")
    number = int(name[1])
    return f"{directory}/{number}".encode() * (number + 1)


GOOD = ["a/f0.txt", "a/f1.txt", "a/b/f0.txt", "a/f2.txt", "c/f0.txt", "c/f1.txt", "a/b/f2.txt"]


@pytest.mark.parametrize("paths, refused", [
    (GOOD, set()),                                   # back and forth between directories
    (["top.txt", *GOOD, "top.txt"], set()),          # the root's own files around them
    (["a/f0.txt", "link/secret.txt", "a/f1.txt"], {"link/secret.txt"}),  # symlinked parent
    (["a/f0.txt", "../outside/secret.txt", "a/f1.txt"], {"../outside/secret.txt"}),
    (["a/f0.txt", "a/missing.txt", "a/f1.txt"], {"a/missing.txt"}),
    (["a/f0.txt", "nowhere/f0.txt", "a/f1.txt", "a/b/f1.txt"], {"nowhere/f0.txt"}),
    (["a/f0.txt", "a/b", "a/b/f1.txt"], {"a/b"}),  # a directory is not read as a file
])
def test_a_batch_reads_each_file_whole_and_refuses_bad_paths_alone(alpha, paths, refused):
    chunks = alpha.supply([SupplyRequest(path, b"0" * 16, 0) for path in paths], 1 << 20)
    assert [chunk.path for chunk in chunks] == paths
    for chunk in chunks:
        if chunk.path in refused:
            assert chunk.error and chunk.data == b"" and chunk.eof, chunk
        elif chunk.path == "top.txt":
            assert (chunk.data, chunk.eof, chunk.error) == (b"top", True, "")
        else:
            assert (chunk.data, chunk.eof, chunk.error) == (_content(chunk.path), True, ""), chunk


def test_a_directory_replaced_between_batches_is_walked_again(alpha, tmp_path):
    """Nothing is kept from one Supply to the next: a parent that became a symbolic link is
    refused in the next batch."""
    [chunk] = alpha.supply([SupplyRequest("c/f0.txt", b"0" * 16, 0)], 1 << 20)
    assert chunk.data == _content("c/f0.txt")
    os.rename(os.path.join(alpha.root, "c"), os.path.join(alpha.root, "c-moved"))
    os.symlink(str(tmp_path / "outside"), os.path.join(alpha.root, "c"))
    write(str(tmp_path), "outside/f0.txt", "secret")
    [chunk] = alpha.supply([SupplyRequest("c/f0.txt", b"0" * 16, 0)], 1 << 20)
    assert chunk.error and chunk.data == b""
