"""How deep a directory chain each recursive step of the sync pipeline handles within Python's
recursion limit (what the scan's depth cap, ``actors.sync.scan.MAX_DEPTH``, must stay below).

Usage: ``python bench/depth_limits.py [spare_frames]``. For a chain of N directories (a file in
the deepest) it runs, in this process with the cap lifted: scan, ``Entry ==``, msgpack round
trip, reconcile (create all on an empty side), the transition that creates it on disk, the next
ancestor (apply + validate), sharing, phantom reification, the root-emptied check, the staging
plan, and a transition that removes it all. ``spare_frames``: frames taken off the recursion
limit to stand for the caller's stack in an actor (default 100). Prints, per step, the deepest N
(of those tried) that worked and the first that failed ("-": none failed, or not reached
because an earlier step failed).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import msgspec
import structlog

from mutagen_actors.actors.sync import scan as scan_module
from mutagen_actors.actors.sync.cache import DigestCache
from mutagen_actors.actors.sync.model import Change, Entry
from mutagen_actors.actors.sync.phantom import reify
from mutagen_actors.actors.sync.reconcile import reconcile
from mutagen_actors.actors.sync.safety import check_root_emptied
from mutagen_actors.actors.sync.settings import Mode
from mutagen_actors.actors.sync.sharing import share
from mutagen_actors.actors.sync.staging import Staging
from mutagen_actors.actors.sync.transition import transition
from mutagen_actors.actors.syncsession.plan import files_to_stage, next_ancestor


def _nest(depth: int, body):
    """Run ``body`` with ``depth`` extra frames on the stack (the caller's stack in an actor)."""
    if depth <= 0:
        return body()
    return _nest(depth - 1, body)


def steps(base: str, levels: int) -> dict[str, bool]:
    alpha, beta = os.path.join(base, "alpha"), os.path.join(base, "beta")
    os.makedirs(os.path.join(alpha, *["d"] * levels))
    os.makedirs(beta)
    with open(os.path.join(alpha, *["d"] * levels, "f"), "wb") as stream:
        stream.write(b"x")
    state: dict = {}
    results: dict[str, bool] = {}

    def run(name, body):
        if results and not all(results.values()):
            return  # a step after a failed one cannot run
        try:
            _nest(SPARE, body)
            results[name] = True
        except RecursionError:
            results[name] = False

    def do_scan():
        state["a"] = scan_module.scan(alpha).root
        state["a2"] = scan_module.scan(alpha).root
        state["b"] = scan_module.scan(beta).root

    run("scan", do_scan)
    run("entry ==", lambda: state["a"] == state["a2"])
    run("msgpack", lambda: msgspec.msgpack.decode(msgspec.msgpack.encode(
        Change("", None, state["a"])), type=Change))
    run("reify", lambda: reify(None, state["a"], state["b"]))
    run("root emptied", lambda: check_root_emptied(state["a"], state["a"], state["b"]))

    def do_reconcile():
        state["r"] = reconcile(None, state["a"], state["b"], Mode.TWO_WAY_SAFE)

    run("reconcile", do_reconcile)
    run("stage plan", lambda: files_to_stage(state["r"].beta_changes))

    def do_transition():
        store = Staging(os.path.join(base, "staging"))
        state["store"] = store  # the file is not staged: it is reported missing, dirs are made
        state["t"] = transition(beta, state["r"].beta_changes, cache=DigestCache(), staging=store)

    run("transition create", do_transition)
    run("next ancestor", lambda: state.__setitem__("anc", next_ancestor(
        None, state["r"].ancestor_changes, [], state["t"].results)))
    run("share", lambda: share(state["a2"], state["anc"]))

    def do_remove():
        now = scan_module.scan(beta).root
        changes = [Change(name, child, None) for name, child in now.contents.items()]
        transition(beta, changes, cache=DigestCache(), staging=state["store"])

    run("transition remove", do_remove)
    return results


SPARE = int(sys.argv[1]) if len(sys.argv) > 1 else 100


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings up
    scan_module.MAX_DEPTH = 10**6  # lift the cap for the measurement
    tried = [200, 256, 300, 350, 400, 450, 480, 500]
    best: dict[str, int] = {}
    first_failure: dict[str, int] = {}
    for levels in tried:
        base = tempfile.mkdtemp(prefix="ma-depth-")
        try:
            for name, ok in steps(base, levels).items():
                if ok:
                    best[name] = levels
                else:
                    first_failure.setdefault(name, levels)
        finally:
            shutil.rmtree(base, ignore_errors=True)
    print(f"recursion limit {sys.getrecursionlimit()}, {SPARE} frames already on the stack")
    for name in best.keys() | first_failure.keys():
        print(f"  {name:18} works at {best.get(name, '-')}, fails at {first_failure.get(name, '-')}")


if __name__ == "__main__":
    main()
