"""kill -9 while new directories are being built: every directory is absent or complete, never
partly there; the next transition completes the rest and removes what the crash left."""

import os

from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry
from mutagen_actors.actors.sync.scan import scan
from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX, HashAlgorithm
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.sync.transition import transition

from .transition_child import kill_mid_transition

DIRECTORIES, FILES, SIZE = 6, 12, 1 << 20
ALGORITHM = HashAlgorithm.SHA256  # the slowest hash: more time inside each placement

# The whole new tree in one change at the root (its directories are built).
_CHANGES = """
tree = {}
for path, digest in listing:
    directory, name = path.split("/")
    tree.setdefault(directory, {})[name] = Entry.file(bytes.fromhex(digest))
new = Entry.directory({d: Entry.directory(files) for d, files in tree.items()})
changes = [Change("", snapshot, new)]
"""


def content(directory: int, index: int) -> bytes:
    return (b"D%02d-F%02d-" % (directory, index)) * (SIZE // 8)


def paths():
    for d in range(DIRECTORIES):
        for i in range(FILES):
            yield d, i, f"d{d}/f{i:02d}"


def stage_all(store: Staging) -> Entry:
    tree: dict = {}
    for d, i, path in paths():
        digest = digest_bytes(content(d, i), ALGORITHM)
        if not store.has(digest):
            store.receive(digest, [content(d, i)])
        tree.setdefault(f"d{d}", {})[f"f{i:02d}"] = Entry.file(digest)
    return Entry.directory({name: Entry.directory(files) for name, files in tree.items()})


def crash_once(base) -> list[str]:
    """Start the build in a child, kill -9 it once the first directory took its name; check
    what is visible; returns the directories that made it."""
    root = base / "root"
    root.mkdir(parents=True)
    store = Staging(str(base / "staging"), ALGORITHM)
    stage_all(store)
    with open(base / "digests", "w") as listing:
        for d, i, path in paths():
            listing.write(f"{path} {digest_bytes(content(d, i), ALGORITHM).hex()}\n")
    kill_mid_transition(_CHANGES, root, store.directory, base / "digests", ALGORITHM,
                        lambda: "d0" in os.listdir(root), "placed its first directory")
    visible = sorted(name for name in os.listdir(root) if not name.startswith(TEMPORARY_PREFIX))
    for name in visible:  # complete, with every file whole
        d = int(name[1:])
        assert sorted(os.listdir(root / name)) == [f"f{i:02d}" for i in range(FILES)]
        for i in range(FILES):
            assert (root / name / f"f{i:02d}").read_bytes() == content(d, i)
    return visible


def test_kill_9_mid_build_leaves_whole_directories_and_the_next_transition_cleans_up(tmp_path):
    for attempt in range(3):  # a very loaded machine may finish before the kill lands
        base = tmp_path / f"attempt{attempt}"
        visible = crash_once(base)
        if len(visible) < DIRECTORIES:
            break
    else:
        raise AssertionError("the kill never landed before the transition finished")
    root = base / "root"
    # The next cycle: the content is staged again, the missing directories are created.
    store = Staging(str(base / "staging"), ALGORITHM)
    cache = DigestCache(ALGORITHM)
    snapshot = scan(str(root), hash=ALGORITHM, cache=cache).root
    wanted = stage_all(store)
    changes = [Change(name, None, entry) for name, entry in wanted.contents.items()
               if name not in snapshot.contents]
    result = transition(str(root), changes, cache=cache, staging=store, hash=ALGORITHM)
    assert result.problems == []
    assert sorted(os.listdir(root)) == [f"d{d}" for d in range(DIRECTORIES)]  # nothing left
    assert scan(str(root), hash=ALGORITHM).root == wanted
