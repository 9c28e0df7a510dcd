"""Property: applying diff(scan of A, B) to a tree A on disk yields exactly B, and the reported
results, applied to A's snapshot, describe B (what the ancestor will record)."""

import os
import tempfile
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mutagen_actors.actors.sync.apply import apply_changes
from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.diff import diff
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind
from mutagen_actors.actors.sync.scan import scan
from mutagen_actors.actors.sync.settings import HashAlgorithm
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.sync.transition import transition

XXH = HashAlgorithm.XXH128
CONTENTS = [b"", b"alpha", b"beta", b"gamma" * 100]
NAMES = ["a", "b", "c"]

leaves = st.one_of(
    st.tuples(st.just("file"), st.sampled_from(CONTENTS), st.booleans()),
    st.tuples(st.just("link"), st.sampled_from(["a", "b/c", "../a"])),
)
trees = st.recursive(
    leaves,
    lambda children: st.tuples(st.just("dir"), st.dictionaries(st.sampled_from(NAMES), children, max_size=3)),
    max_leaves=8,
)
roots = st.dictionaries(st.sampled_from(NAMES), trees, max_size=3)


def materialize(path: str, node, past: int) -> None:
    kind = node[0]
    if kind == "file":
        with open(path, "wb") as handle:
            handle.write(node[1])
        os.chmod(path, 0o755 if node[2] else 0o644)
        os.utime(path, ns=(past, past))
    elif kind == "link":
        os.symlink(node[1], path)
    else:
        os.mkdir(path)
        for name, child in node[1].items():
            materialize(os.path.join(path, name), child, past)


def to_entry(node, path: str, staging: Staging) -> Entry:
    kind = node[0]
    if kind == "file":
        digest = digest_bytes(node[1], XXH)
        if not staging.has(digest):
            staging.receive(digest, [node[1]])
        return Entry.file(digest, node[2])
    if kind == "link":
        return Entry.symlink(node[1])
    return Entry.directory({name: to_entry(child, f"{path}/{name}".lstrip("/"), staging) for name, child in node[1].items()})


def portable(entry: Entry, path: str = "") -> bool:
    """Whether every symlink in ``entry`` stays inside the root (so the scan accepts it)."""
    if entry.kind == Kind.PROBLEMATIC:
        return False
    if entry.kind == Kind.SYMLINK:
        depth = path.count("/")
        return not (entry.target.startswith("..") and depth == 0)
    return all(portable(child, f"{path}/{name}" if path else name) for name, child in entry.contents.items())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=roots, after=roots)
def test_transition_turns_a_into_b(before, after):
    with tempfile.TemporaryDirectory(prefix="mutagen-actors-property-") as base:
        root = os.path.join(base, "root")
        past = time.time_ns() - 10_000_000_000
        materialize(root, ("dir", before), past)
        cache = DigestCache(XXH)
        snapshot = scan(root, cache=cache).root
        staging = Staging(os.path.join(base, "staging"), XXH)
        target = to_entry(("dir", after), "", staging)
        if not portable(target) or not portable(snapshot):
            return  # invalid links are scan problems; not what this property is about
        changes = diff("", snapshot, target)
        result = transition(root, changes, cache=cache, staging=staging, hash=XXH)
        assert result.problems == []
        assert scan(root, cache=DigestCache(XXH)).root == target
        recorded = apply_changes(snapshot, [Change(change.path, None, change.new) for change in result.results])
        assert recorded == target
