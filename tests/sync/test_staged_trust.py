"""Staged content is verified once, before it takes its digest name, and the transition trusts
that name (checking only the size the store verified): every way content reaches the store
records it; a staged file whose size changed is refused and fetched again; a file staged by an
earlier process (no record; perhaps cut short by a crash while it was written) is hashed before
it counts as staged, or at the transition. Staged files carry the endpoint's new-file mode, so
a plain file needs no ``chmod`` to take its place, and an executable still gets its bits.

Through the real endpoint (``agent.endpoint.LocalEndpoint``: its receiver, staging store and
transition) on the real filesystem."""

from __future__ import annotations

import os
import random
import stat

import pytest

from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind
from mutagen_actors.actors.sync.settings import HashAlgorithm, PermissionsMode
from mutagen_actors.actors.sync.staging import _Sizes
from mutagen_actors.actors.sync.transition import STAGED_MISMATCH
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import Chunk, StageItem

XXH = HashAlgorithm.XXH128
CONTENT = bytes(range(256)) * 40 + b"tail"  # 10,244 bytes


def endpoint(tmp_path, **settings) -> LocalEndpoint:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return LocalEndpoint(EndpointSettings(root=str(root), session="s", side="beta",
                                          data_directory=str(tmp_path / "data"), **settings))


def whole(ep: LocalEndpoint, data: bytes, digest: bytes) -> None:
    assert ep.receive([Chunk("f", digest, 0, len(data), data, True)]) == (1, [])


def pieces(ep: LocalEndpoint, data: bytes, digest: bytes) -> None:
    half = len(data) // 2
    assert ep.receive([Chunk("f", digest, 0, len(data), data[:half], False),
                       Chunk("f", digest, half, len(data), data[half:], True)]) == (1, [])


def resumed(ep: LocalEndpoint, data: bytes, digest: bytes) -> None:
    half = len(data) // 2
    assert ep.receive([Chunk("f", digest, 0, len(data), data[:half], False)]) == (0, [])
    ep.receiver.close()  # the transfer is cut: the first half stays for resuming
    [item] = ep.needs([StageItem("f", digest)])
    assert item.offset == half
    assert ep.receive([Chunk("f", digest, half, len(data), data[half:], True)]) == (1, [])


def writer(ep: LocalEndpoint, data: bytes, digest: bytes) -> None:
    ep.staging.receive(digest, [data[:100], data[100:]])


def local_copy(ep: LocalEndpoint, data: bytes, digest: bytes) -> None:
    source = os.path.join(os.path.dirname(ep.root), "elsewhere")
    with open(source, "wb") as handle:
        handle.write(data)
    ep.staging.receive_file(digest, source)


WAYS = {"whole": whole, "pieces": pieces, "resumed": resumed, "writer": writer,
        "local copy": local_copy}


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def mode_of(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def entry(data: bytes, executable: bool = False) -> Entry:
    return Entry(Kind.FILE, digest=digest_bytes(data, XXH), executable=executable)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


# Where the file is placed: in an existing directory (a rename that never replaces), or in a new
# directory being built (a plain rename relative to the open store).
WHERE = {"existing directory": ("f", "f"), "new directory": ("d", "d/f")}


@pytest.mark.parametrize("way", list(WAYS))
@pytest.mark.parametrize("executable", [False, True])
@pytest.mark.parametrize("where", list(WHERE))
def test_every_way_into_the_store_records_what_it_verified(tmp_path, umask, way, executable,
                                                            where):
    ep = endpoint(tmp_path)
    new = entry(CONTENT, executable)
    WAYS[way](ep, CONTENT, new.digest)
    staged = ep.staging.path_for(new.digest)
    assert ep.staging.verified_size(new.digest) == len(CONTENT)
    assert mode_of(staged) == 0o600  # the endpoint's new-file mode (the default)
    path, file_path = WHERE[where]
    target = new if path == "f" else Entry(Kind.DIRECTORY, {"f": new})
    result = ep.transition([Change(path, None, target)])
    assert result.problems == [] and not result.missing_staged
    placed = os.path.join(ep.root, file_path)
    assert read(placed) == CONTENT
    assert mode_of(placed) == (0o700 if executable else 0o600)
    assert not os.path.exists(staged)


@pytest.mark.parametrize("damage", ["longer", "shorter", "empty"])
def test_a_staged_file_whose_size_changed_is_refused_and_fetched_again(tmp_path, damage):
    ep = endpoint(tmp_path)
    new = entry(CONTENT)
    whole(ep, CONTENT, new.digest)
    staged = ep.staging.path_for(new.digest)
    if damage == "longer":
        with open(staged, "ab") as handle:
            handle.write(b"!")
    else:
        os.truncate(staged, len(CONTENT) - 1 if damage == "shorter" else 0)
    change = Change("f", None, new)

    result = ep.transition([change])
    assert [(p.path, p.error) for p in result.problems] == [("f", STAGED_MISMATCH)]
    assert result.missing_staged  # the cycle runs again
    assert os.listdir(ep.root) == []  # never placed
    assert not ep.staging.has(new.digest)

    [item] = ep.needs([StageItem("f", new.digest)])  # the next cycle asks for it again
    assert item.offset == 0
    whole(ep, CONTENT, new.digest)
    result = ep.transition([change])
    assert result.problems == [] and not result.missing_staged
    assert read(os.path.join(ep.root, "f")) == CONTENT


def changed_byte(path: str) -> None:
    with open(path, "r+b") as handle:
        handle.seek(5000)
        handle.write(b"\x00" if CONTENT[5000] else b"\x01")


def cut_short(path: str) -> None:
    """What a crash in the middle of writing a whole file leaves (it is written under its
    digest name once its bytes verified in memory: agent.transfer._receive_whole)."""
    os.truncate(path, 4096)


@pytest.mark.parametrize("damage", [changed_byte, cut_short])
def test_content_an_earlier_process_staged_is_hashed_before_it_counts(tmp_path, damage):
    first = endpoint(tmp_path)
    new = entry(CONTENT)
    whole(first, CONTENT, new.digest)
    damage(first.staging.path_for(new.digest))
    later = endpoint(tmp_path)  # a restarted agent: the store is the same directory
    assert later.staging.verified_size(new.digest) is None

    [item] = later.needs([StageItem("f", new.digest)])  # fetched again in this very cycle
    assert item.offset == 0
    assert not later.staging.has(new.digest)
    whole(later, CONTENT, new.digest)
    result = later.transition([Change("f", None, new)])
    assert result.problems == [] and not result.missing_staged
    assert read(os.path.join(later.root, "f")) == CONTENT


@pytest.mark.parametrize("damage", [changed_byte, cut_short])
def test_the_transition_hashes_content_an_earlier_process_staged(tmp_path, damage):
    first = endpoint(tmp_path)
    new = entry(CONTENT)
    whole(first, CONTENT, new.digest)
    damage(first.staging.path_for(new.digest))
    later = endpoint(tmp_path)
    result = later.transition([Change("f", None, new)])
    assert [(p.path, p.error) for p in result.problems] == [("f", STAGED_MISMATCH)]
    assert result.missing_staged  # the cycle runs again
    assert os.listdir(later.root) == []
    assert not later.staging.has(new.digest)


def test_intact_content_an_earlier_process_staged_is_kept_and_used(tmp_path, umask):
    first = endpoint(tmp_path)
    new = entry(CONTENT)
    whole(first, CONTENT, new.digest)
    later = endpoint(tmp_path)
    assert later.needs([StageItem("f", new.digest)]) == []
    assert later.staging.verified_size(new.digest) == len(CONTENT)
    result = later.transition([Change("f", None, new)])
    assert result.problems == []
    assert read(os.path.join(later.root, "f")) == CONTENT


@pytest.mark.parametrize("permissions, file_mode, staged_mode, placed_mode", [
    (PermissionsMode.PORTABLE, 0o644, 0o644, 0o644),
    (PermissionsMode.PORTABLE, 0o600, 0o600, 0o600),
    (PermissionsMode.PORTABLE, 0o444, 0o444, 0o444),
    (PermissionsMode.MANUAL, 0o640, 0o640, 0o640),
    (PermissionsMode.PORTABLE, 0o664, 0o644, 0o664),  # the umask takes g+w: the transition restores it
])
def test_staged_files_carry_the_endpoints_file_mode(tmp_path, umask, permissions, file_mode,
                                                    staged_mode, placed_mode):
    ep = endpoint(tmp_path, permissions_mode=permissions, default_file_mode=file_mode)
    new = entry(CONTENT)
    whole(ep, CONTENT, new.digest)
    assert mode_of(ep.staging.path_for(new.digest)) == staged_mode
    result = ep.transition([Change("f", None, new)])
    assert result.problems == []
    assert mode_of(os.path.join(ep.root, "f")) == placed_mode


def test_content_used_twice_is_checked_for_each_copy(tmp_path, umask):
    ep = endpoint(tmp_path)
    new = entry(CONTENT)
    whole(ep, CONTENT, new.digest)
    tree = Entry(Kind.DIRECTORY, {"a": new, "b": new})
    result = ep.transition([Change("d", None, tree)])
    assert result.problems == []
    for name in ("a", "b"):
        assert read(os.path.join(ep.root, "d", name)) == CONTENT
        assert mode_of(os.path.join(ep.root, "d", name)) == 0o600


@pytest.mark.parametrize("seed", range(5))
def test_the_packed_size_record_answers_like_a_dict(seed):
    """``staging._Sizes`` against a dict, with digests from a two-letter alphabet so that records
    often contain another digest across their boundaries (a match that must not count)."""
    rng = random.Random(seed)
    sizes, model = _Sizes(4), {}
    for _ in range(2000):
        digest = bytes(rng.choice(b"\x00\x01") for _ in range(4))
        action = rng.random()
        if action < 0.6:
            size = rng.choice([0, 1, 256, 1 << 20, rng.randrange(1 << 40)])
            sizes.put(digest, size)
            model[digest] = size
        elif action < 0.8:
            sizes.discard(digest)
            model.pop(digest, None)
        assert sizes.get(digest) == model.get(digest)
    for digest in {bytes([a, b, c, d]) for a in (0, 1) for b in (0, 1) for c in (0, 1) for d in (0, 1)}:
        assert sizes.get(digest) == model.get(digest)
