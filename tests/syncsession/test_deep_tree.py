"""A tree deeper than the scan's depth cap, end to end through a real daemon: the session keeps
running, everything above the cap synchronizes, the capped directory is a listed scan problem and
the other side's copy of the deep part is left alone."""

import os

from mutagen_actors.actors.sync.scan import MAX_DEPTH, TOO_DEEP
from mutagen_actors.wire.messages import control

from .conftest import tree, wait_until, write


def chain(levels: int) -> str:
    return "/".join(["d"] * levels)


def below_cap(found: dict) -> dict:
    capped = chain(MAX_DEPTH)
    return {k: v for k, v in found.items() if k == capped or k.startswith(capped + "/")}


def test_tree_deeper_than_the_cap(sync, roots):
    alpha, beta = roots
    os.makedirs(os.path.join(alpha, chain(MAX_DEPTH + 50)))
    write(alpha, "top.txt", "top")
    write(alpha, chain(100) + "/mid.txt", "mid")
    write(alpha, chain(MAX_DEPTH - 1) + "/deepest.txt", "deepest synchronized")
    write(alpha, chain(MAX_DEPTH + 49) + "/below.txt", "alpha's, below the cap")
    # Beta already holds its own content below the cap: it must stay as it is.
    write(beta, chain(MAX_DEPTH + 10) + "/theirs.txt", "beta's, below the cap")
    theirs_before = below_cap(tree(beta))

    identifier = sync.create(alpha, beta)

    def synchronized():
        if not os.path.exists(os.path.join(beta, chain(MAX_DEPTH - 1), "deepest.txt")):
            return None
        state = sync.state(identifier)
        return state if state.status == "watching" and state.successful_cycles else None

    state = wait_until(synchronized, 60, interval=0.1, what="the shallow part to synchronize")
    capped = chain(MAX_DEPTH)
    assert [(p.path, p.error) for p in state.alpha.scan_problems] == [(capped, TOO_DEEP)]
    assert [(p.path, p.error) for p in state.beta.scan_problems] == [(capped, TOO_DEEP)]
    assert state.last_error == "" and state.conflicts == []

    seen = tree(beta)
    assert seen["top.txt"][1] == b"top"
    assert seen[chain(100) + "/mid.txt"][1] == b"mid"
    assert seen[chain(MAX_DEPTH - 1) + "/deepest.txt"][1] == b"deepest synchronized"
    # Nothing below the cap crossed over, and beta's own deep content is untouched.
    assert below_cap(seen) == theirs_before
    assert os.path.exists(os.path.join(alpha, chain(MAX_DEPTH + 49), "below.txt"))

    # The session goes on: a later change above the cap still synchronizes, no actor restarted.
    write(alpha, chain(20) + "/later.txt", "later")
    sync.flush(identifier)
    assert tree(beta)[chain(20) + "/later.txt"][1] == b"later"
    status = sync.request(control.GetDaemonStatus())
    session = next(s for s in status.sessions if s.id == identifier)
    assert session.status == "running"
    assert all(actor.restarts == 0 for actor in session.actors)
