"""A directory being built (``transition`` ``fill``) places its plain staged files through a lean
loop (``_Transition.fill_fast``); everything else goes through the general path. Both must give
the same results: the returned entries, the problems, the digest cache records, the disk and
what stays in staging. Each case below runs twice on fresh roots, fast path on and off."""

from __future__ import annotations

import os

import pytest

from mutagen_actors.actors.sync import transition as transition_module
from mutagen_actors.actors.sync.cache import RACY_MTIME, DigestCache, records
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change, Entry, Kind
from mutagen_actors.actors.sync.settings import HashAlgorithm
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.sync.transition import transition

from .disk_view import disk

XXH = HashAlgorithm.XXH128


def file(data: bytes, executable: bool = False) -> Entry:
    return Entry(Kind.FILE, digest=digest_bytes(data, XXH), executable=executable)


def link(target: str) -> Entry:
    return Entry(Kind.SYMLINK, target=target)


def d(**contents: Entry) -> Entry:
    return Entry.directory(contents)


# Each case: (changes as (path, new entry), contents to stage, staged contents to damage:
# data -> "missing" | "longer" | "unrecorded", transition keyword arguments).
CASES = {
    "plain files": ([("a", d(x=file(b"x1"), y=file(b"y22"), z=file(b"")))], {}, {}),
    "executables": ([("a", d(run=file(b"#!/bin/sh\n", True), data=file(b"data")))], {}, {}),
    "symlinks": ([("a", d(l=link("f"), f=file(b"f"), bad=link("/etc/passwd")))], {}, {}),
    "empty directories": ([("a", d(e=d(), f=d(g=d())))], {}, {}),
    "nested": ([("a", d(b=d(c=d(f=file(b"deep"), g=file(b"deeper", True)), h=file(b"h")),
                        i=file(b"i")))], {}, {}),
    "missing staged file": ([("a", d(ok=file(b"ok"), gone=file(b"gone"), after=file(b"after")))],
                            {b"gone": "missing"}, {}),
    "staged file of the wrong size": ([("a", d(ok=file(b"ok"), long=file(b"long"), more=file(b"m")))],
                                      {b"long": "longer"}, {}),
    "staged by an earlier process": ([("a", d(old=file(b"old"), new=file(b"new")))],
                                     {b"old": "unrecorded"}, {}),
    "duplicate digests": ([("a", d(one=file(b"same"), two=file(b"same"), sub=d(three=file(b"same")))),
                           ("b", d(four=file(b"same", True)))], {}, {}),
    "duplicate digest, missing": ([("a", d(one=file(b"dup"), two=file(b"dup")))], {b"dup": "missing"}, {}),
    "duplicate digest, wrong size": ([("a", d(one=file(b"dup"), two=file(b"dup")))], {b"dup": "longer"}, {}),
    "mode the staging store did not give": ([("a", d(f=file(b"f"), x=file(b"x", True)))], {},
                                            {"default_file_mode": 0o640}),
    "owner configured (general path)": ([("a", d(f=file(b"f")))], {}, {"default_owner": os.getuid()}),
    "root created": ([("", d(top=file(b"top"), sub=d(f=file(b"f"), l=link("../top"))))], {}, {}),
    "name taken meanwhile": ([("taken", d(f=file(b"f"))), ("a", d(g=file(b"g")))], {}, {}),
    "invalid digest": ([("a", d(ok=file(b"ok"), bad=Entry(Kind.FILE, digest=b"short")))], {}, {}),
}


def contents_of(entry: Entry):
    if entry.kind == Kind.FILE:
        yield entry
    for child in (entry.contents or {}).values():
        yield from contents_of(child)


def run_case(base: str, case: str, fast: bool, monkeypatch) -> dict:
    changes, damage, options = CASES[case]
    monkeypatch.setattr(transition_module._Transition, "fast_build", fast)
    parent = os.path.join(base, "fast" if fast else "general")
    root = os.path.join(parent, "root")
    os.makedirs(parent)
    if changes[0][0] != "":
        os.mkdir(root)
    if case == "name taken meanwhile":
        os.mkdir(os.path.join(root, "taken"))
    staging = Staging(os.path.join(parent, "staging"), XXH)
    for _, new in changes:
        for entry in contents_of(new):
            if len(entry.digest) == 16:
                data = next(data for data in DATA if digest_bytes(data, XXH) == entry.digest)
                staging.receive(entry.digest, [data])
    for data, how in damage.items():
        staged = staging.path_for(digest_bytes(data, XXH))
        if how == "missing":
            os.unlink(staged)
        elif how == "longer":
            with open(staged, "ab") as handle:
                handle.write(b"!")
    if "unrecorded" in damage.values():
        staging = Staging(staging.directory, XXH)  # a new process: nothing verified by it yet
    cache = DigestCache(XXH)
    result = transition(root, [Change(path, None, new) for path, new in changes],
                        cache=cache, staging=staging, **options)
    kept = {}
    for path, record in records(cache):
        st = os.lstat(os.path.join(root, path))
        assert (record.size, record.inode, record.mode) == (st.st_size, st.st_ino, st.st_mode), path
        assert record.mtime_ns in (RACY_MTIME, st.st_mtime_ns), path
        kept[path] = (record.size, record.mode, record.digest, record.mtime_ns == RACY_MTIME)
    return {
        "results": result.results,
        "problems": result.problems,
        "missing staged": result.missing_staged,
        "records": kept,
        "disk": disk(root),
        "staging": sorted(name for _, _, names in os.walk(staging.directory) for name in names),
    }


DATA = [b"x1", b"y22", b"", b"#!/bin/sh\n", b"data", b"f", b"deep", b"deeper", b"h", b"i", b"ok",
        b"gone", b"after", b"long", b"m", b"old", b"new", b"same", b"dup", b"x", b"top", b"g"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_and_general_paths_agree(case, tmp_path, monkeypatch):
    fast = run_case(str(tmp_path), case, True, monkeypatch)
    general = run_case(str(tmp_path), case, False, monkeypatch)
    assert fast == general


@pytest.mark.parametrize("case, problems", [
    ("missing staged file", [("a/gone", transition_module.STAGED_MISSING)]),
    ("staged file of the wrong size", [("a/long", transition_module.STAGED_MISMATCH)]),
    ("duplicate digest, missing", [("a/one", transition_module.STAGED_MISSING),
                                   ("a/two", transition_module.STAGED_MISSING)]),
    ("name taken meanwhile", [("taken", transition_module.MODIFICATION_DETECTED)]),
])
def test_problems_are_reported_per_path(case, problems, tmp_path, monkeypatch):
    outcome = run_case(str(tmp_path), case, True, monkeypatch)
    assert [(problem.path, problem.error) for problem in outcome["problems"]] == problems
    assert all(not name.startswith(".mutagen") for name in outcome["disk"])


def test_plain_files_take_the_fast_path(tmp_path, monkeypatch):
    """The lean loop places plain staged files itself: only the directories and the symlink
    reach the general ``create``."""
    created = []
    general = transition_module._Transition.create

    def counting(self, pfd, name, path, new, building=False):
        created.append(path)
        return general(self, pfd, name, path, new, building)

    monkeypatch.setattr(transition_module._Transition, "create", counting)
    outcome = run_case(str(tmp_path), "symlinks", True, monkeypatch)
    assert created == ["a", "a/l", "a/bad"]
    assert outcome["disk"]["a/f"] == ("file", 0o600, b"f")
