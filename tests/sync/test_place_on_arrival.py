"""Place on arrival: the receiver writes a whole small file it verified in memory at its own path
in the store's tree (``agent.transfer.Receiver``), and the transition renames a whole placed
directory in as the directory being built, then only checks and completes it
(``actors.sync.transition`` ``adopt`` / ``complete``). Each case runs twice on fresh endpoints:
placed (the receiver places) and today's path (the receiver stages everything under digest
names); the results, problems, digest cache records and disk must be the same."""

from __future__ import annotations

import errno
import os

import pytest

from mutagen_actors.actors.sync import transition as transition_module
from mutagen_actors.actors.sync.cache import RACY_MTIME, records
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind
from mutagen_actors.actors.sync.settings import HashAlgorithm, WatchMode
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.syncsession.plan import files_to_stage
from mutagen_actors.agent import transfer
from mutagen_actors.agent.endpoint import EndpointSettings, LocalEndpoint
from mutagen_actors.wire.messages.endpoint import Chunk

from .disk_view import disk

XXH = HashAlgorithm.XXH128
CONTENT: dict[bytes, bytes] = {}


def file(data: bytes, executable: bool = False) -> Entry:
    digest = digest_bytes(data, XXH)
    CONTENT[digest] = data
    return Entry(Kind.FILE, digest=digest, executable=executable)


def link(target: str) -> Entry:
    return Entry(Kind.SYMLINK, target=target)


def d(**contents: Entry) -> Entry:
    return Entry.directory(contents)


def endpoint_at(base: str, **settings) -> LocalEndpoint:
    root = os.path.join(base, "root")
    os.makedirs(root, exist_ok=True)
    return LocalEndpoint(EndpointSettings(
        root=root, session="place", side="beta", data_directory=os.path.join(base, "data"),
        watch_mode=WatchMode.NO_WATCH, **settings))


def stage(endpoint: LocalEndpoint, changes: list[Change]) -> int:
    """StageBegin for ``changes`` and every needed file whole in one message; files received."""
    needed = endpoint.needs(files_to_stage(changes))
    chunks = [Chunk(item.path, item.digest, 0, len(CONTENT[item.digest]), CONTENT[item.digest], True)
              for item in needed]
    completed, problems, refetch = endpoint.receive_chunks(chunks)
    assert not problems and not refetch
    return completed


def where(staging: Staging, path: str, digest: bytes) -> str:
    """Where the content staged for (path, digest) is: its placed file, else its digest name."""
    if staging.placed_size(digest, path) is not None:
        return os.path.join(staging.tree_directory, path)
    return staging.path_for(digest)


def damage_staged(staging: Staging, path: str, data: bytes, how: str) -> None:
    """Spoil what was staged for (path, content ``data``): "missing" removes it, "longer" adds a
    byte to it."""
    staged_at = where(staging, path, digest_bytes(data, XXH))
    if how == "missing":
        os.unlink(staged_at)
    else:
        with open(staged_at, "ab") as handle:
            handle.write(b"!")


def put_extra(staging: Staging, paths: list[str]) -> None:
    """Write files the plan never named at ``paths`` in the store's tree (parents made)."""
    for path in paths:
        full = os.path.join(staging.tree_directory, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(b"not planned")


def outcome(endpoint: LocalEndpoint, result) -> dict:
    kept = {}
    for path, record in records(endpoint.cache):
        st = os.lstat(os.path.join(endpoint.root, path))
        assert (record.size, record.inode, record.mode) == (st.st_size, st.st_ino, st.st_mode), path
        assert record.mtime_ns in (RACY_MTIME, st.st_mtime_ns), path
        kept[path] = (record.size, record.mode, record.digest, record.mtime_ns == RACY_MTIME)
    return {"results": result.results, "problems": result.problems,
            "missing staged": result.missing_staged, "records": kept,
            "disk": disk(endpoint.root)}


X1, Y2 = file(b"x1"), file(b"y22")
# Each case: (changes staged, changes applied (None: the same), damage, settings). Damage:
# (path, digest) -> "missing" | "longer"; "extra": names put in the tree (placed run only);
# "appeared": directories made in the root before the transition.
CASES = {
    "plain files": ([("a", d(x=X1, y=Y2, z=file(b"")))], None, {}, {}),
    "executables": ([("a", d(run=file(b"#!/bin/sh\n", True), data=file(b"data")))], None, {}, {}),
    "symlinks": ([("a", d(l=link("f"), f=file(b"f"), bad=link("/etc/passwd")))], None, {}, {}),
    "empty directories": ([("a", d(e=d(), f=d(g=d()), h=file(b"h")))], None, {}, {}),
    "nested": ([("a", d(b=d(c=d(f=file(b"deep"), g=file(b"deeper", True)), h=file(b"h")),
                        i=file(b"i"))), ("top", d(t=file(b"t")))], None, {}, {}),
    "placed file missing": ([("a", d(ok=file(b"ok"), gone=file(b"gone"), after=file(b"after")))],
                            None, {("a/gone", b"gone"): "missing"}, {}),
    "placed file of the wrong size": ([("a", d(ok=file(b"ok"), long=file(b"long")))], None,
                                      {("a/long", b"long"): "longer"}, {}),
    "duplicate digest": ([("a", d(one=file(b"same"), two=file(b"same"), sub=d(three=file(b"same")),
                                  own=file(b"own"))), ("b", d(four=file(b"same", True)))], None, {}, {}),
    "plan changed between staging and transition": (
        [("a", d(p=file(b"moved"), keep=file(b"keep"), q=file(b"replaced")))],
        [("a", d(p=file(b"never staged"), keep=file(b"keep"))), ("b", d(r=file(b"moved"))),
         ("c", d(q=file(b"replaced", True)))], {}, {}),
    "content placed elsewhere, used first": (
        [("z", d(p=file(b"wanted by a")))], [("a", d(q=file(b"wanted by a")))], {}, {}),
    "extra names in the tree": ([("a", d(f=file(b"f"), sub=d(g=file(b"g"))))], None,
                                {"extra": ["a/extra", "a/sub/extra", "a/gone/deeper", "a/f2"]}, {}),
    "directory appeared meanwhile": ([("a", d(f=file(b"f"))), ("b", d(g=file(b"g")))], None,
                                     {"appeared": ["a"]}, {}),
    "a name that is a directory in the tree, a file in the plan": (
        [("a", d(n=d(m=file(b"m"))))], [("a", d(n=file(b"n-file")))], {}, {}),
    "content placed once, wanted twice": ([("a", d(p=file(b"twice")))],
                                          [("a", d(p=file(b"twice"), q=file(b"twice", True))),
                                           ("b", d(r=file(b"twice")))], {}, {}),
    "plan deeper than what was placed": ([("a", d(f=file(b"f")))],
                                         [("a", d(f=file(b"f"), sub=d(g=file(b"unstaged")),
                                                  l=link("f")))], {}, {}),
    "mode the staging store did not give": ([("a", d(f=file(b"f"), x=file(b"x", True)))], None, {},
                                            {"default_file_mode": 0o640}),
    "directory mode": ([("a", d(s=d(f=file(b"f"))))], None, {}, {"default_directory_mode": 0o750}),
    "owner configured": ([("a", d(f=file(b"f")))], None, {}, {"default_owner": f"id:{os.getuid()}"}),
    "root's children in a root made in place": ([("", d(top=file(b"top"), sub=d(f=file(b"f"))))],
                                                None, {}, {}),
}


def run_case(base: str, case: str, placing: bool, monkeypatch) -> tuple[dict, LocalEndpoint]:
    staged, applied, damage, settings = CASES[case]
    base = os.path.join(base, "placed" if placing else "today")
    endpoint = endpoint_at(base, **settings)
    if staged[0][0] == "":
        os.rmdir(endpoint.root)
    before = [Change(path, None, new) for path, new in staged]
    after = before if applied is None else [Change(path, None, new) for path, new in applied]
    with monkeypatch.context() as patch:
        if not placing:
            patch.setattr(transfer.Receiver, "_placement_possible", lambda self: False)
        stage(endpoint, before)
    staging = endpoint.staging
    if placing:
        assert os.listdir(staging.tree_directory)
    for key, how in damage.items():
        if key == "extra":
            if placing:
                put_extra(staging, how)
        elif key == "appeared":
            for path in how:
                os.mkdir(os.path.join(endpoint.root, path))
        else:
            damage_staged(staging, *key, how)
    result = endpoint.transition(after)
    return outcome(endpoint, result), endpoint


@pytest.mark.parametrize("case", sorted(CASES))
def test_adopted_build_and_todays_path_agree(case, tmp_path, monkeypatch):
    placed, _ = run_case(str(tmp_path), case, True, monkeypatch)
    today, _ = run_case(str(tmp_path), case, False, monkeypatch)
    assert placed == today
    assert not any(name.startswith(".mutagen") for name in placed["disk"])


@pytest.mark.parametrize("case, problems", [
    ("placed file missing", [("a/gone", transition_module.STAGED_MISSING)]),
    ("placed file of the wrong size", [("a/long", transition_module.STAGED_MISMATCH)]),
    ("plan changed between staging and transition", [("a/p", transition_module.STAGED_MISSING)]),
    ("directory appeared meanwhile", [("a", transition_module.MODIFICATION_DETECTED)]),
])
def test_problems_are_reported_per_path(case, problems, tmp_path, monkeypatch):
    placed, _ = run_case(str(tmp_path), case, True, monkeypatch)
    assert [(problem.path, problem.error) for problem in placed["problems"]] == problems


def test_whole_directories_are_adopted_not_filled(tmp_path, monkeypatch):
    """The placed directory is renamed in: no file of it reaches the general ``create``, and no
    directory is made and filled (``fill``)."""
    created, made = [], []
    general = transition_module._Transition.create

    def counting(self, pfd, name, path, new, building=False):
        created.append(path)
        return general(self, pfd, name, path, new, building)

    general_fill = transition_module._Transition.fill

    def fill(self, pfd, name, path, new):
        made.append(path)
        return general_fill(self, pfd, name, path, new)

    monkeypatch.setattr(transition_module._Transition, "create", counting)
    monkeypatch.setattr(transition_module._Transition, "fill", fill)
    outcome, endpoint = run_case(str(tmp_path), "nested", True, monkeypatch)
    assert created == ["a", "top"]
    assert made == []  # no directory made and filled: all adopted
    assert outcome["disk"]["a/b/c/g"] == ("file", 0o700, b"deeper")
    assert not os.path.exists(endpoint.staging.directory)  # wiped after the transition


def test_when_adoption_fails_every_placed_file_is_still_found(tmp_path, monkeypatch):
    """EXDEV (a mount inside the root) or any other refusal of the rename: the directory is built
    as before and each placed file is taken from the tree by its record."""
    def refuse(*_args):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(transition_module, "_adopt_rename", refuse)
    for case in ("nested", "plan changed between staging and transition", "executables"):
        placed, _ = run_case(str(tmp_path / case), case, True, monkeypatch)
        monkeypatch.undo()
        today, _ = run_case(str(tmp_path / case), case, False, monkeypatch)
        monkeypatch.setattr(transition_module, "_adopt_rename", refuse)
        assert placed == today, case


def test_a_file_of_a_directory_that_is_not_built_is_found_in_the_tree(tmp_path):
    endpoint = endpoint_at(str(tmp_path))
    os.makedirs(os.path.join(endpoint.root, "exists"))
    change = [Change("exists", d(), d(f=file(b"into an existing directory")))]
    stage(endpoint, change)
    assert endpoint.staging.placed_size(digest_bytes(b"into an existing directory", XXH),
                                        "exists/f") is not None
    result = endpoint.transition(change)
    assert not result.problems and not result.missing_staged
    with open(os.path.join(endpoint.root, "exists", "f"), "rb") as handle:
        assert handle.read() == b"into an existing directory"
