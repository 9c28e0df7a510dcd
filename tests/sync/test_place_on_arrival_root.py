"""Place on arrival when the transition creates the root itself (the first sync to a new
directory): the store's whole tree is renamed next to the root under a temporary name, completed,
and given the root's name with a rename that never replaces (``actors.sync.transition``
``build_root``). Each case runs on fresh endpoints three ways: the root adopted, placed but the
adoption refused (EXDEV: the root made in place and filled as before), and nothing placed (the
receiver stages everything under digest names); results, problems, cache records and disk agree."""

from __future__ import annotations

import errno
import os

import pytest

from mutagen_actors.actors.sync import transition as transition_module
from mutagen_actors.actors.sync.cache import DigestCache, records
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.model import Change
from mutagen_actors.actors.sync.settings import TEMPORARY_PREFIX, StageMode
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.syncsession.plan import files_to_stage
from mutagen_actors.agent import transfer

from .test_place_on_arrival import (
    XXH, d, damage_staged, endpoint_at, file, link, outcome, put_extra, stage)
from .test_place_on_arrival_staging import BUILDER_SETUP, run_crashing_builder, tree_of, whole

# Each case: (root staged, root applied (None: the same), damage, settings). Damage:
# (path, data) -> "missing" | "longer"; "extra": names put in the tree (placed runs only).
CASES = {
    "plain": (d(top=file(b"top"), sub=d(f=file(b"f"), g=file(b"g")), e=d(), l=link("top")),
              None, {}, {}),
    "executables and a mode the store did not give": (
        d(run=file(b"#!/bin/sh\n", True), data=file(b"data")), None, {},
        {"default_file_mode": 0o640}),
    "directory mode": (d(s=d(t=d(f=file(b"f")))), None, {}, {"default_directory_mode": 0o750}),
    "owner configured": (d(f=file(b"f"), s=d(g=file(b"g"))), None, {},
                         {"default_owner": f"id:{os.getuid()}"}),
    "placed file missing": (d(ok=file(b"ok"), s=d(gone=file(b"gone"))), None,
                            {("s/gone", b"gone"): "missing"}, {}),
    "placed file of the wrong size": (d(long=file(b"long"), s=d(ok=file(b"ok"))), None,
                                      {("long", b"long"): "longer"}, {}),
    "duplicate digest": (d(one=file(b"same"), s=d(two=file(b"same", True)), own=file(b"own")),
                         None, {}, {}),
    "content placed elsewhere, used first": (d(z=d(p=file(b"wanted by a"))),
                                             d(a=d(q=file(b"wanted by a"))), {}, {}),
    "plan changed between staging and transition": (
        d(a=d(p=file(b"moved"), keep=file(b"keep"), q=file(b"replaced"))),
        d(a=d(p=file(b"never staged"), keep=file(b"keep")), b=d(r=file(b"moved")),
          c=d(q=file(b"replaced", True))), {}, {}),
    "content placed once, wanted twice": (d(p=file(b"twice")),
                                          d(p=file(b"twice"), q=file(b"twice", True),
                                            b=d(r=file(b"twice"))), {}, {}),
    "extra names in the tree": (d(f=file(b"f"), sub=d(g=file(b"g"))), None,
                                {"extra": ["extra", "sub/extra", "gone/deeper"]}, {}),
    "plan deeper than what was placed": (d(f=file(b"f")),
                                         d(f=file(b"f"), sub=d(g=file(b"unstaged")), l=link("f")),
                                         {}, {}),
    "neighboring store": (d(f=file(b"f"), s=d(g=file(b"g"))), None, {},
                          {"stage_mode": StageMode.NEIGHBORING}),
}
WAYS = ("adopted", "refused", "unplaced")


def refuse(*_args):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def run_root_case(base: str, case: str, way: str, monkeypatch) -> tuple[dict, object]:
    staged, applied, damage, settings = CASES[case]
    endpoint = endpoint_at(os.path.join(base, way), **settings)
    os.rmdir(endpoint.root)  # the sync creates its root
    before = [Change("", None, staged)]
    after = before if applied is None else [Change("", None, applied)]
    with monkeypatch.context() as patch:
        if way == "unplaced":
            patch.setattr(transfer.Receiver, "_placement_possible", lambda self: False)
        stage(endpoint, before)
    staging = endpoint.staging
    placed = os.path.isdir(staging.tree_directory) and os.listdir(staging.tree_directory)
    assert bool(placed) == (way != "unplaced")
    for key, how in damage.items():
        if key == "extra":
            if way != "unplaced":
                put_extra(staging, how)
            continue
        damage_staged(staging, *key, how)
    made: list[str] = []
    general_fill = transition_module._Transition.fill

    def fill(self, pfd, name, path, new):
        made.append(path)
        return general_fill(self, pfd, name, path, new)

    with monkeypatch.context() as patch:
        patch.setattr(transition_module._Transition, "fill", fill)
        if way == "refused":
            patch.setattr(transition_module, "_adopt_rename", refuse)
        result = endpoint.transition(after)
    # Adopted: the root is not made and filled; otherwise it is.
    assert ("" in made) == (way != "adopted"), made
    return outcome(endpoint, result), endpoint


def leftovers(endpoint) -> list[str]:
    """Temporary names next to the root (the store of a ``neighboring`` session aside)."""
    parent = os.path.dirname(endpoint.root)
    return sorted(name for name in os.listdir(parent) if name.startswith(TEMPORARY_PREFIX)
                  and os.path.join(parent, name) != endpoint.staging.directory)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_root_built_from_the_tree_agrees_with_the_root_made_in_place(case, tmp_path, monkeypatch):
    found = {}
    for way in WAYS:
        found[way], endpoint = run_root_case(str(tmp_path), case, way, monkeypatch)
        assert not leftovers(endpoint), way
        assert not os.path.exists(endpoint.staging.tree_directory) or found[way]["missing staged"]
    assert found["adopted"] == found["refused"] == found["unplaced"]
    assert not any(name.startswith(".mutagen") for name in found["adopted"]["disk"])


@pytest.mark.parametrize("case, problems", [
    ("plain", []),
    ("placed file missing", [("s/gone", transition_module.STAGED_MISSING)]),
    ("placed file of the wrong size", [("long", transition_module.STAGED_MISMATCH)]),
    ("plan changed between staging and transition", [("a/p", transition_module.STAGED_MISSING)]),
])
def test_problems_of_an_adopted_root_are_reported_per_path(case, problems, tmp_path, monkeypatch):
    found, _ = run_root_case(str(tmp_path), case, "adopted", monkeypatch)
    assert [(problem.path, problem.error) for problem in found["problems"]] == problems


def test_a_root_that_appeared_meanwhile_is_left_alone_and_the_placed_content_kept(tmp_path):
    endpoint = endpoint_at(str(tmp_path))
    os.rmdir(endpoint.root)
    new = d(f=file(b"f"), s=d(g=file(b"g")), l=link("f"))
    stage(endpoint, [Change("", None, new)])
    tree = endpoint.staging.tree_directory
    placed = sorted(os.path.relpath(os.path.join(parent, name), tree)
                    for parent, _dirs, names in os.walk(tree) for name in names)
    assert placed == ["f", "s/g"]
    os.mkdir(endpoint.root)  # the user made it after the scan
    with open(os.path.join(endpoint.root, "f"), "wb") as handle:
        handle.write(b"the user's")
    cache = DigestCache(XXH)
    result = transition_module.transition(endpoint.root, [Change("", None, new)], cache=cache,
                                          staging=endpoint.staging)
    assert [(p.path, p.error) for p in result.problems] == [("", transition_module.MODIFICATION_DETECTED)]
    assert result.results == [Change("", None, None)]
    assert os.listdir(endpoint.root) == ["f"]
    with open(os.path.join(endpoint.root, "f"), "rb") as handle:
        assert handle.read() == b"the user's"
    assert not list(records(cache))
    assert not leftovers(endpoint)
    # Untouched in the store's tree, still trusted for its (path, digest).
    for path, data in (("f", b"f"), ("s/g", b"g")):
        assert endpoint.staging.placed_size(digest_bytes(data, XXH), path) == len(data)
        with open(os.path.join(tree, path), "rb") as handle:
            assert handle.read() == data


@pytest.mark.parametrize("appears", ["before the adoption", "while the root is built"])
def test_a_root_that_appears_is_never_replaced(appears, tmp_path, monkeypatch):
    """The root's name is taken by a rename that never replaces: a root made by someone while
    the build ran keeps its content, the build goes back to the store's tree."""
    endpoint = endpoint_at(str(tmp_path))
    os.rmdir(endpoint.root)
    new = d(f=file(b"f"), s=d(g=file(b"g")))
    stage(endpoint, [Change("", None, new)])
    complete = transition_module._Transition.complete

    def user_makes_the_root(self, pfd, name, path, entry):
        os.mkdir(endpoint.root)
        with open(os.path.join(endpoint.root, "mine"), "wb") as handle:
            handle.write(b"mine")
        return complete(self, pfd, name, path, entry)

    if appears == "before the adoption":
        os.mkdir(endpoint.root)
        with open(os.path.join(endpoint.root, "mine"), "wb") as handle:
            handle.write(b"mine")
    else:
        monkeypatch.setattr(transition_module._Transition, "complete", user_makes_the_root)
    result = endpoint.transition([Change("", None, new)])
    assert [(p.path, p.error) for p in result.problems] == [("", transition_module.MODIFICATION_DETECTED)]
    assert os.listdir(endpoint.root) == ["mine"]
    assert not leftovers(endpoint)
    assert not os.path.exists(endpoint.staging.directory)  # nothing missing: wiped as always


def test_internal_store_keeps_the_root_made_in_place(tmp_path, monkeypatch):
    """A store inside the root is never adopted as the root. The receiver makes the store (and
    so the root) while staging: the transition finds the root there and leaves it alone, placed
    or not, and the next cycle fills the (empty) root."""
    found = {}
    for way in ("adopted", "unplaced"):
        endpoint = endpoint_at(str(tmp_path / way), stage_mode=StageMode.INTERNAL)
        os.rmdir(endpoint.root)
        new = d(f=file(b"f"), s=d(g=file(b"g")))
        with monkeypatch.context() as patch:
            if way == "unplaced":
                patch.setattr(transfer.Receiver, "_placement_possible", lambda self: False)
            stage(endpoint, [Change("", None, new)])
        assert endpoint.staging.directory.startswith(endpoint.root + "/")
        first = outcome(endpoint, endpoint.transition([Change("", None, new)]))
        assert not leftovers(endpoint)
        with monkeypatch.context() as patch:
            if way == "unplaced":
                patch.setattr(transfer.Receiver, "_placement_possible", lambda self: False)
            changes = [Change(name, None, entry) for name, entry in new.contents.items()]
            stage(endpoint, changes)
        found[way] = (first, outcome(endpoint, endpoint.transition(changes)))
    assert found["adopted"] == found["unplaced"]
    first, second = found["adopted"]
    assert [(p.path, p.error) for p in first["problems"]] == [("", transition_module.MODIFICATION_DETECTED)]
    assert not second["problems"]
    assert second["disk"]["s/g"] == ("file", 0o600, b"g")


def test_a_store_inside_the_root_is_never_adopted(tmp_path):
    """Defensive: even were the root missing with a store path inside it, no adoption."""
    root = str(tmp_path / "root")
    staging = Staging(os.path.join(root, f"{TEMPORARY_PREFIX}staging-x"), XXH)
    state = transition_module._Transition(root, DigestCache(XXH), staging, XXH, "portable",
                                          "portable", 0o600, 0o700, -1, -1, None, None)
    assert state.store_in_root
    state = transition_module._Transition(root, DigestCache(XXH), Staging(root + "-store", XXH),
                                          XXH, "portable", "portable", 0o600, 0o700, -1, -1,
                                          None, None)
    assert not state.store_in_root


CRASHING_ROOT_BUILDER = BUILDER_SETUP + r"""

def crash(self, dfd, path, new):
    os._exit(9)  # a kill -9 right after the root's tree was adopted, before its check

transition_module._Transition.complete_open = crash
root = Entry.directory({top: Entry.directory(names) for top, names in sorted(tree.items())})
endpoint.transition([Change("", None, root)])
"""


def test_a_crash_right_after_the_root_was_adopted_then_the_next_cycle(tmp_path):
    directories, count = 3, 4
    content = run_crashing_builder(CRASHING_ROOT_BUILDER, tmp_path, directories, count)
    root = tmp_path / "root"
    # No root: only the crash's temporary build next to where it would be.
    assert not root.exists()
    builds = [name for name in os.listdir(tmp_path) if name.startswith(TEMPORARY_PREFIX)]
    assert len(builds) == 1 and builds[0].endswith(transition_module._root_tag("root"))
    # Builds that are not this root's leftovers are never touched: another root's, a live one.
    other = tmp_path / (builds[0][:-len(transition_module._root_tag("root"))]
                        + transition_module._root_tag("other"))
    live = tmp_path / (f"{transition_module._OWN_BUILD}{os.getppid()}-live0"  # a live process's
                       + transition_module._root_tag("root"))
    for kept in (other, live):
        kept.mkdir()
        (kept / "x").write_bytes(b"x")

    endpoint = endpoint_at(tmp_path)  # a new process's endpoint (the crash lost the placed tree)
    os.rmdir(endpoint.root)
    changes = [Change("", None, tree_of(content))]
    needed = endpoint.needs(files_to_stage(changes))
    assert sorted(item.path for item in needed) == sorted(content)
    endpoint.receive_chunks([whole(item.path, content[item.path]) for item in needed])
    transition_module._ROOTS_CLEANED.discard(str(root))  # as in a new process
    result = endpoint.transition(changes)
    assert not result.problems and not result.missing_staged
    assert sorted(os.listdir(tmp_path)) == sorted(["data", "root", other.name, live.name])
    for path, data in content.items():
        assert (root / path).read_bytes() == data
    # The next cycle places into the root that exists now: the tree is made again, adopted.
    changes = [Change("d9", None, tree_of({"x": b"x9"}))]
    assert [item.path for item in endpoint.needs(files_to_stage(changes))] == ["d9/x"]
    endpoint.receive_chunks([whole("d9/x", b"x9")])
    assert os.listdir(endpoint.staging.tree_directory) == ["d9"]
    result = endpoint.transition(changes)
    assert not result.problems and not result.missing_staged
    assert (root / "d9" / "x").read_bytes() == b"x9"
