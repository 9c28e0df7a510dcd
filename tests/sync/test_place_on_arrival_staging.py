"""Place on arrival, the receiver's half (``agent.transfer.Receiver``) and the store's tree
(``actors.sync.staging``): what is placed and when, what a placed file is trusted for, what an
earlier StageBegin or an earlier (killed) process left in the tree, and the resume after a kill -9
of a process in the middle of staging."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind
from mutagen_actors.actors.sync.settings import HashAlgorithm, WatchMode
from mutagen_actors.actors.syncsession.plan import files_to_stage
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem

from .killed_child import kill_9_once_it_says

XXH = HashAlgorithm.XXH128


def digest(data: bytes) -> bytes:
    return digest_bytes(data, XXH)


def endpoint_at(base, data_directory=None, **settings) -> LocalEndpoint:
    root = os.path.join(str(base), "root")
    os.makedirs(root, exist_ok=True)
    return LocalEndpoint(EndpointSettings(
        root=root, session="place", side="beta",
        data_directory=data_directory or os.path.join(str(base), "data"),
        watch_mode=WatchMode.NO_WATCH, **settings))


def whole(path: str, data: bytes) -> Chunk:
    return Chunk(path, digest(data), 0, len(data), data, True)


def tree_files(endpoint: LocalEndpoint) -> list[str]:
    found = []
    for parent, _dirs, names in os.walk(endpoint.staging.tree_directory):
        found += [os.path.relpath(os.path.join(parent, name), endpoint.staging.tree_directory)
                  for name in names]
    return sorted(found)


def on_disk(endpoint: LocalEndpoint, files) -> dict[str, bytes]:
    found = {}
    for path in files:
        with open(os.path.join(endpoint.root, path), "rb") as handle:
            found[path] = handle.read()
    return found


def tree_of(files: dict[str, bytes]) -> Entry:
    """A directory Entry holding ``files`` (path -> content)."""
    nested: dict = {}
    for path, data in files.items():
        *parents, name = path.split("/")
        level = nested
        for parent in parents:
            level = level.setdefault(parent, {})
        level[name] = Entry(Kind.FILE, digest=digest(data))

    def build(level: dict) -> Entry:
        return Entry.directory({name: build(value) if isinstance(value, dict) else value
                                for name, value in level.items()})
    return build(nested)


@pytest.mark.parametrize("items, chunk, placed", [
    # one item per digest: placed at its path
    ([("a/f", b"one")], whole("a/f", b"one"), True),
    # the digest occurs twice among the items: staged under its digest's name
    ([("a/f", b"twice"), ("b/g", b"twice")], whole("a/f", b"twice"), False),
    # a path that must never be resolved: under the digest's name
    ([("a/f", b"up")], whole("../f", b"up"), False),
    ([("a/f", b"dot")], whole("a/./f", b"dot"), False),
    # no StageBegin in this process yet: as before
    (None, whole("a/f", b"no begin"), False),
])
def test_a_whole_verified_file_is_placed_only_when_it_is_safe(tmp_path, items, chunk, placed):
    endpoint = endpoint_at(tmp_path)
    if items is not None:
        endpoint.needs([StageItem(path, digest(data)) for path, data in items])
    completed, problems, refetch = endpoint.receive_chunks([chunk])
    assert (completed, problems, refetch) == (1, [], [])
    staging = endpoint.staging
    assert (staging.placed_size(chunk.digest, chunk.path) == len(chunk.data)) == placed
    assert (tree_files(endpoint) == [chunk.path]) == placed
    assert staging.has(chunk.digest) != placed


def test_a_placed_file_is_trusted_only_for_its_path_and_digest(tmp_path):
    endpoint = endpoint_at(tmp_path)
    endpoint.needs([StageItem("a/f", digest(b"content")), StageItem("a/g", digest(b"other"))])
    endpoint.receive_chunks([whole("a/f", b"content")])
    staging = endpoint.staging
    assert staging.placed_size(digest(b"content"), "a/f") == 7
    assert staging.placed_size(digest(b"content"), "a/g") is None
    assert staging.placed_size(digest(b"other"), "a/f") is None
    assert staging.verified_size(digest(b"content")) is None  # not under the digest's name
    # A second copy arriving for the same path never replaces the placed file.
    endpoint.receive_chunks([whole("a/f", b"content")])
    assert tree_files(endpoint) == ["a/f"] and staging.has(digest(b"content"))


def test_the_size_limit_applies_to_placed_files(tmp_path):
    endpoint = endpoint_at(tmp_path, max_staging_file_size=4)
    endpoint.needs([StageItem("small", digest(b"1234")), StageItem("big", digest(b"12345"))])
    completed, problems, refetch = endpoint.receive_chunks([whole("small", b"1234"),
                                                            whole("big", b"12345")])
    assert completed == 1 and not refetch
    assert [(p.path, p.error) for p in problems] == [
        ("big", "staged file exceeds the maximum staging file size (4 bytes)")]
    assert tree_files(endpoint) == ["small"]


def test_content_that_does_not_verify_is_never_placed(tmp_path):
    endpoint = endpoint_at(tmp_path)
    endpoint.needs([StageItem("a", digest(b"right"))])
    completed, problems, refetch = endpoint.receive_chunks(
        [Chunk("a", digest(b"right"), 0, 5, b"wrong", True)])
    assert completed == 0 and len(problems) == 1 and refetch == [StageItem("a", digest(b"right"))]
    assert tree_files(endpoint) == []


def other_device_directory(base) -> str:
    for candidate in ("/dev/shm", "/run/user"):
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK) and \
                os.stat(candidate).st_dev != os.stat(str(base)).st_dev:
            return candidate
    pytest.skip("no writable directory on another filesystem")


def test_a_store_on_another_filesystem_than_the_root_places_nothing(tmp_path):
    import tempfile
    from mutagen_actors.actors.sync.staging import Staging

    endpoint = endpoint_at(tmp_path)
    elsewhere = tempfile.mkdtemp(dir=other_device_directory(tmp_path))
    try:
        endpoint.staging = Staging(os.path.join(elsewhere, "store"), XXH)
        endpoint.needs([StageItem("a/f", digest(b"far"))])
        assert endpoint.receive_chunks([whole("a/f", b"far")])[0] == 1
        assert endpoint.staging.has(digest(b"far")) and tree_files(endpoint) == []
    finally:
        endpoint.staging.wipe()
        os.rmdir(elsewhere)


def test_the_tree_is_wiped_with_the_store(tmp_path):
    endpoint = endpoint_at(tmp_path)
    endpoint.needs([StageItem("a/f", digest(b"x"))])
    endpoint.receive_chunks([whole("a/f", b"x")])
    endpoint.staging.wipe()
    assert not os.path.exists(endpoint.staging.directory)
    assert endpoint.staging.placed_size(digest(b"x"), "a/f") is None


def test_a_second_stage_begin_keeps_what_this_process_placed(tmp_path):
    endpoint = endpoint_at(tmp_path)
    files = {"a/f": b"first", "a/g": b"second"}
    items = [StageItem(path, digest(data)) for path, data in files.items()]
    assert endpoint.needs(items) == items
    endpoint.receive_chunks([whole("a/f", b"first")])
    assert endpoint.needs(items) == [StageItem("a/g", digest(b"second"))]
    endpoint.receive_chunks([whole("a/g", b"second")])
    assert endpoint.needs(items) == []
    result = endpoint.transition([Change("a", None, tree_of(files).contents["a"])])
    assert not result.problems and not result.missing_staged
    assert on_disk(endpoint, files) == files


def test_leftovers_of_an_earlier_process_are_hashed_and_sorted(tmp_path):
    """What a killed process left in the tree: content matching a new item at its path stays
    placed (not fetched again); a file cut short by the kill is never trusted (fetched again);
    content the new plan wants at another path moves into the store under its digest (not
    fetched again); anything else is gone."""
    first = endpoint_at(tmp_path)
    old_items = [StageItem("a/keep", digest(b"keep")), StageItem("a/short", digest(b"short!")),
                 StageItem("a/moves", digest(b"moves")), StageItem("a/stale", digest(b"stale"))]
    first.needs(old_items)
    first.receive_chunks([whole("a/keep", b"keep"), whole("a/short", b"short!"),
                          whole("a/moves", b"moves"), whole("a/stale", b"stale")])
    tree = first.staging.tree_directory
    with open(os.path.join(tree, "a", "short"), "r+b") as handle:
        handle.truncate(3)  # the kill came in the middle of the write
    os.symlink("/etc/passwd", os.path.join(tree, "a", "link"))
    os.makedirs(os.path.join(tree, "empty", "dir"))

    second = endpoint_at(tmp_path)  # a new process: records of the first are gone
    new_files = {"a/keep": b"keep", "a/short": b"short!", "b/moved": b"moves", "a/new": b"new"}
    items = sorted((StageItem(path, digest(data)) for path, data in new_files.items()),
                   key=lambda item: item.path)
    needed = second.needs(items)
    assert needed == [StageItem("a/new", digest(b"new")), StageItem("a/short", digest(b"short!"))]
    staging = second.staging
    assert staging.placed_size(digest(b"keep"), "a/keep") == 4
    assert staging.verified_size(digest(b"moves")) == 5  # moved under its digest's name
    assert tree_files(second) == ["a/keep"]
    assert not staging.has(digest(b"short!")) or staging.verified_size(digest(b"short!")) is None
    second.receive_chunks([whole("a/new", b"new"), whole("a/short", b"short!")])
    result = second.transition([Change(name, None, entry)
                                for name, entry in tree_of(new_files).contents.items()])
    assert not result.problems and not result.missing_staged
    assert on_disk(second, new_files) == new_files


KILLED_STAGER = r"""
import json, os, sys
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.settings import HashAlgorithm, WatchMode
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem

base, count, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
endpoint = LocalEndpoint(EndpointSettings(
    root=os.path.join(base, "root"), session="place", side="beta",
    data_directory=os.path.join(base, "data"), watch_mode=WatchMode.NO_WATCH))
files = [(f"d{index // 10}/f{index}", b"content %d " % index * (index + 1)) for index in range(count)]
digest = lambda data: digest_bytes(data, HashAlgorithm.XXH128)
endpoint.needs([StageItem(path, digest(data)) for path, data in files])
for start in range(0, stop, 7):  # messages of 7 files, as the stager sends them
    batch = files[start:min(start + 7, stop)]
    endpoint.receive_chunks([Chunk(p, digest(d), 0, len(d), d, True) for p, d in batch])
print("staged", flush=True)
sys.stdin.read()  # stays here until the parent kills it
"""


def test_kill_9_mid_staging_then_a_new_cycle_transfers_only_what_is_missing(tmp_path):
    count, stop = 60, 33
    os.makedirs(tmp_path / "root")
    kill_9_once_it_says([sys.executable, "-c", KILLED_STAGER, str(tmp_path), str(count), str(stop)],
                        b"staged\n")

    files = {f"d{index // 10}/f{index}": b"content %d " % index * (index + 1)
             for index in range(count)}
    endpoint = endpoint_at(tmp_path)
    changes = [Change(name, None, entry) for name, entry in tree_of(files).contents.items()]
    items = files_to_stage(changes)
    needed = endpoint.needs(items)
    staged_before = {f"d{index // 10}/f{index}" for index in range(stop)}
    assert sorted(item.path for item in needed) == sorted(set(files) - staged_before)
    endpoint.receive_chunks([whole(item.path, files[item.path]) for item in needed])
    result = endpoint.transition(changes)
    assert not result.problems and not result.missing_staged
    assert on_disk(endpoint, files) == files
    assert not os.path.exists(endpoint.staging.directory)


# The start of a child that builds, in the root argv[1]/root, argv[2] directories of argv[3] files
# each (content: "d<d>/f<i>" -> b"dir <d> file <i>"): every file staged whole, the directories in
# ``tree`` (top name -> {file name: Entry}); each test's child then patches in its crash and runs
# its transition.
BUILDER_SETUP = r"""
import os, sys
from mutagen_actors.actors.sync import transition as transition_module
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind
from mutagen_actors.actors.sync.settings import HashAlgorithm, WatchMode
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem

base, directories, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
endpoint = LocalEndpoint(EndpointSettings(
    root=os.path.join(base, "root"), session="place", side="beta",
    data_directory=os.path.join(base, "data"), watch_mode=WatchMode.NO_WATCH))
digest = lambda data: digest_bytes(data, HashAlgorithm.XXH128)
content = {f"d{d}/f{i}": b"dir %d file %d" % (d, i) for d in range(directories) for i in range(files)}
endpoint.needs([StageItem(path, digest(data)) for path, data in sorted(content.items())])
endpoint.receive_chunks([Chunk(p, digest(c), 0, len(c), c, True) for p, c in sorted(content.items())])
tree = {}
for path, data in content.items():
    top, name = path.split("/")
    tree.setdefault(top, {})[name] = Entry(Kind.FILE, digest=digest(data))
"""


def run_crashing_builder(script: str, base, directories: int, files: int) -> dict[str, bytes]:
    """Run a child ``script`` (``BUILDER_SETUP`` + its crash) below ``base``; it must die with
    exit status 9 (its crash) within 120 s. Returns the content it built: path -> bytes."""
    child = subprocess.run([sys.executable, "-c", script, str(base), str(directories), str(files)],
                           capture_output=True, timeout=120)
    assert child.returncode == 9, child.stderr.decode()
    return {f"d{d}/f{i}": b"dir %d file %d" % (d, i) for d in range(directories) for i in range(files)}

CRASHING_BUILDER = BUILDER_SETUP + r"""
completed = transition_module._Transition.complete_open
calls = []

def crash_on_the_second(self, dfd, path, new):
    calls.append(path)
    if len(calls) == 2:
        os._exit(9)  # a kill -9 right after the second directory was adopted, before its check
    return completed(self, dfd, path, new)

transition_module._Transition.complete_open = crash_on_the_second
endpoint.transition([Change(top, None, Entry.directory(names)) for top, names in sorted(tree.items())])
"""


def test_a_crash_mid_build_leaves_whole_directories_and_the_next_cycle_fetches_only_the_lost(
        tmp_path):
    directories, count = 4, 5
    os.makedirs(tmp_path / "root")
    content = run_crashing_builder(CRASHING_BUILDER, tmp_path, directories, count)
    root = tmp_path / "root"
    # d0 took its name whole; d1 was adopted and is only under a temporary name; d2, d3 placed.
    visible = sorted(name for name in os.listdir(root) if not name.startswith(".mutagen"))
    assert visible == ["d0"]
    assert sorted(os.listdir(root / "d0")) == [f"f{i}" for i in range(count)]
    assert len(os.listdir(root)) == 2  # and the crash's temporary build directory

    endpoint = endpoint_at(tmp_path)
    missing = {path: data for path, data in content.items() if not path.startswith("d0/")}
    changes = [Change(name, None, entry) for name, entry in tree_of(missing).contents.items()]
    needed = endpoint.needs(files_to_stage(changes))
    assert sorted(item.path for item in needed) == [f"d1/f{i}" for i in range(count)]
    endpoint.receive_chunks([whole(item.path, missing[item.path]) for item in needed])
    result = endpoint.transition(changes)
    assert not result.problems and not result.missing_staged
    assert sorted(os.listdir(root)) == [f"d{d}" for d in range(directories)]  # leftover cleaned
    assert on_disk(endpoint, content) == content


@pytest.mark.parametrize("mode", ["mutagen", "neighboring", "internal"])
def test_every_stage_mode_places_and_scans_never_see_the_tree(tmp_path, mode):
    from mutagen_actors.actors.sync.cache import DigestCache
    from mutagen_actors.actors.sync.scan import scan
    from mutagen_actors.actors.sync.settings import StageMode

    endpoint = endpoint_at(tmp_path, stage_mode=StageMode(mode))
    files = {"a/f": b"one", "a/b/g": b"two", "c": b"three"}
    changes = [Change(name, None, entry) for name, entry in tree_of(files).contents.items()]
    endpoint.needs(files_to_stage(changes))
    endpoint.receive_chunks([whole(path, data) for path, data in files.items()])
    assert tree_files(endpoint) == sorted(files)
    assert scan(endpoint.root, hash=XXH, cache=DigestCache(XXH)).root == Entry.directory({})
    result = endpoint.transition(changes)
    assert not result.problems and not result.missing_staged
    assert on_disk(endpoint, files) == files
    assert scan(endpoint.root, hash=XXH, cache=DigestCache(XXH)).root == tree_of(files)
