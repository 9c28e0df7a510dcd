"""Content straight from sender to receiver in real sessions (real daemon, real endpoint actor
processes, local -> local): an initial sync arrives byte-exact, large files in pieces, with no
refetch, and the stager says it did not carry the content; a sync the other way (beta -> alpha)
does the same."""

from __future__ import annotations

import random

from mutagen_actors.wire.messages import sync as sm

from .conftest import tree, wait_same, wait_until, write

MIB = 1 << 20


def staging_done(daemon) -> list[dict]:
    return [e for e in daemon.log_lines() if e.get("event") == "staging done"]


def test_initial_sync_goes_straight_from_alpha_to_beta(sync, roots):
    alpha, beta = roots
    rng = random.Random(21)
    files = {f"d{i % 9}/f{i}.txt": rng.randbytes(rng.randrange(0, 30_000)) for i in range(400)}
    files["big/one.bin"] = rng.randbytes(3 * MIB + 5)
    files["big/two.bin"] = rng.randbytes(MIB)
    for name, content in files.items():
        write(alpha, name, content)
    identifier = sync.create(alpha, beta)
    try:
        found = wait_same(alpha, beta, timeout=60)
        assert all(found[name][1] == content for name, content in files.items())
        done = wait_until(lambda: staging_done(sync.daemon), 10, what="the staging log")
        assert done[0]["direct"] is True and done[0]["refetched"] == 0
        assert done[0]["content_bytes"] == sum(len(c) for c in files.values())
        assert sync.state(identifier).last_error == ""
    finally:
        sync.command(sm.SyncTerminate, identifier)


def test_beta_to_alpha_goes_straight_too(sync, roots):
    alpha, beta = roots
    write(alpha, "seed.txt", "seed")
    identifier = sync.create(alpha, beta)
    try:
        wait_same(alpha, beta)
        content = random.Random(3).randbytes(2 * MIB + 3)
        write(beta, "from-beta.bin", content)
        sync.flush(identifier)
        wait_until(lambda: tree(alpha).get("from-beta.bin", (None, None))[1] == content, 30,
                   what="beta's file on alpha")
        assert all(e["direct"] is True for e in staging_done(sync.daemon))
    finally:
        sync.command(sm.SyncTerminate, identifier)
