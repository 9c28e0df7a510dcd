"""End to end against a real daemon: what a user sees in the two roots and in ``list``.

One daemon serves the whole module; each test has its own session and roots."""

from __future__ import annotations

import os
import shutil

import pytest

from mutagen_actors.wire.messages import sync as sm

from .conftest import leftovers, tree, wait_same, wait_until, write


@pytest.fixture
def session(shared_sync, roots):
    alpha, beta = roots
    write(alpha, "seed/one.txt", "one")
    write(beta, "seed/two.txt", "two")
    write(beta, "top.txt", "top")
    identifier = shared_sync.create(alpha, beta)
    wait_same(alpha, beta)
    yield shared_sync, identifier, alpha, beta
    shared_sync.command(sm.SyncTerminate, identifier)


@pytest.mark.parametrize("source", ["alpha", "beta"])
def test_edits_deletions_renames_chmod_and_symlinks_propagate(session, source):
    sync, identifier, alpha, beta = session
    here, there = (alpha, beta) if source == "alpha" else (beta, alpha)

    write(here, "dir/new.txt", "created")
    wait_until(lambda: tree(there).get("dir/new.txt") == ("file", b"created", False), 15,
               what="creation to propagate")

    write(here, "dir/new.txt", "edited")
    wait_until(lambda: tree(there).get("dir/new.txt", (0, 0))[1] == b"edited", 15,
               what="edit to propagate")

    os.rename(os.path.join(here, "dir/new.txt"), os.path.join(here, "dir/renamed.txt"))
    wait_until(lambda: "dir/new.txt" not in tree(there)
               and tree(there).get("dir/renamed.txt", (0, 0))[1] == b"edited", 15,
               what="rename to propagate")

    os.chmod(os.path.join(here, "dir/renamed.txt"), 0o755)
    wait_until(lambda: tree(there).get("dir/renamed.txt") == ("file", b"edited", True), 15,
               what="chmod +x to propagate")

    os.symlink("renamed.txt", os.path.join(here, "dir/link"))
    wait_until(lambda: tree(there).get("dir/link") == ("link", "renamed.txt"), 15,
               what="symlink to propagate")

    os.unlink(os.path.join(here, "dir/renamed.txt"))
    wait_until(lambda: "dir/renamed.txt" not in tree(there), 15, what="deletion to propagate")
    shutil.rmtree(os.path.join(here, "dir"))
    wait_until(lambda: "dir" not in tree(there), 15, what="directory deletion to propagate")

    assert wait_same(alpha, beta)["seed/one.txt"] == ("file", b"one", False)
    assert not leftovers(alpha, beta)
    state = sync.state(identifier)
    assert state.last_error == ""
    assert state.successful_cycles >= 1
    assert state.alpha.connected and state.beta.connected


def test_conflict_is_shown_kept_and_resolved_by_deleting_one_side(session):
    sync, identifier, alpha, beta = session
    sync.command(sm.SyncPause, identifier)
    write(alpha, "both.txt", "alpha version")
    write(beta, "both.txt", "beta version")
    sync.command(sm.SyncResume, identifier)
    sync.flush(identifier)
    state = sync.state(identifier)
    assert [c.root for c in state.conflicts] == ["both.txt"]
    assert tree(alpha)["both.txt"][1] == b"alpha version"
    assert tree(beta)["both.txt"][1] == b"beta version"
    write(alpha, "elsewhere.txt", "still syncing")  # the rest keeps syncing
    wait_until(lambda: "elsewhere.txt" in tree(beta), 15, what="other changes to propagate")

    os.unlink(os.path.join(beta, "both.txt"))
    wait_until(lambda: tree(beta).get("both.txt", (0, 0))[1] == b"alpha version", 15,
               what="the surviving copy to propagate")
    wait_until(lambda: not sync.state(identifier).conflicts, 15, what="the conflict to clear")


def test_emptying_one_root_halts_and_resume_after_fixing_continues(session):
    sync, identifier, alpha, beta = session
    os.rename(beta, beta + ".old")  # empty it at once (a slow rm -rf is best-effort, as in
    os.mkdir(beta)                  # Mutagen: a partial deletion seen mid-way may propagate)
    state = sync.wait_status(identifier, "halted-on-root-emptied", timeout=15)
    assert sm.STATUS_DESCRIPTIONS[state.status] == "Halted due to one-sided root emptying"
    assert tree(alpha)["seed/one.txt"][1] == b"one"  # the wipe did not propagate
    assert "session is halted" in sync.refused(sm.SyncFlush(sm.Selection([identifier])))

    write(beta, "seed/one.txt", "one")  # fix it: put content back
    write(beta, "seed/two.txt", "two")
    write(beta, "top.txt", "top")
    sync.command(sm.SyncResume, identifier)
    sync.wait_status(identifier, "watching", timeout=15)
    write(beta, "after.txt", "after resume")
    wait_until(lambda: "after.txt" in tree(alpha), 15, what="sync after resume")


def test_paused_session_does_nothing_and_flush_is_refused(session):
    sync, identifier, alpha, beta = session
    sync.command(sm.SyncPause, identifier)
    state = sync.state(identifier)
    assert state.paused and not state.alpha.connected
    write(alpha, "while-paused.txt", "x")
    assert sync.refused(sm.SyncFlush(sm.Selection([identifier]))) == "session is paused"
    assert "while-paused.txt" not in tree(beta)
    sync.command(sm.SyncResume, identifier)
    wait_until(lambda: "while-paused.txt" in tree(beta), 15, what="sync after resume")


def test_flush_on_no_watch_session_and_reset(shared_sync, roots):
    sync = shared_sync
    alpha, beta = roots
    write(alpha, "a.txt", "a")
    identifier = sync.create(alpha, beta, watch_mode="no-watch")
    state = sync.state(identifier)
    assert state.successful_cycles == 0 and "a.txt" not in tree(beta)  # no automatic cycle
    sync.flush(identifier)
    assert tree(beta)["a.txt"][1] == b"a"
    write(alpha, "b.txt", "b")
    sync.flush(identifier)
    assert tree(beta)["b.txt"][1] == b"b"

    sync.command(sm.SyncReset, identifier)  # forget the ancestor: deletions become re-creations
    os.unlink(os.path.join(beta, "a.txt"))
    sync.flush(identifier)
    assert tree(beta)["a.txt"][1] == b"a"
    sync.command(sm.SyncTerminate, identifier)
    assert "did not match" in sync.refused(sm.SyncList(sm.Selection([identifier])))
    assert tree(alpha) and tree(beta)["b.txt"][1] == b"b"  # terminate leaves files alone


def test_terminate_removes_the_sessions_staging_stores_and_nothing_else(sync, roots):
    """A store left by a transfer cut short (in the data directory, or inside the root where an
    endpoint stages when the data directory is on another filesystem) goes with the session; the
    user's files stay."""
    alpha, beta = roots
    write(alpha, "a.txt", "a")
    identifier = sync.create(alpha, beta)
    wait_same(alpha, beta)
    in_root = os.path.join(beta, f".mutagen-temporary-staging-{identifier}-beta")
    in_data = os.path.join(sync.daemon.data_dir, "staging", f"{identifier}-beta")
    for store in (in_root, in_data):
        os.makedirs(store, exist_ok=True)
        write(store, "left-over.resume", "partial")
    sync.command(sm.SyncTerminate, identifier)
    assert not os.path.exists(in_root) and not os.path.exists(in_data)
    assert tree(alpha)["a.txt"][1] == b"a" and tree(beta)["a.txt"][1] == b"a"
