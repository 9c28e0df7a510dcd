"""An initial sync whose transition meets a problem (a real local session; issue 6 of the
transition's round trip): the results that went as requested come back compact, the one that did
not comes back whole, and the ancestor records exactly what happened. While the files are
staged (the transfer rate capped by the test-only variable, so it lasts seconds), a file appears
on beta at a path alpha creates: the transition leaves it alone and says so; everything else
arrives. The ancestor then has no entry there, so the next cycle sees two creations: a conflict,
both contents kept. (Had the ancestor recorded alpha's file there, beta's would have looked like
an edit and overwritten alpha's.)"""

from __future__ import annotations

import glob
import os

from mutagen_actors.actors.syncsession import archive

from .conftest import MIB, wait_until, write


def read(root: str, relative: str) -> bytes:
    with open(os.path.join(root, relative), "rb") as stream:
        return stream.read()


def test_a_path_taken_during_staging_is_left_alone_and_the_ancestor_says_so(throttled, roots):
    sync = throttled
    alpha, beta = roots
    big = os.urandom(32 * MIB)  # two seconds at the capped rate
    write(alpha, "big.bin", big)
    write(alpha, "a.txt", "a")
    write(alpha, "dir/x.txt", "x")
    write(alpha, "dir/deeper/y.txt", "y")
    write(alpha, "clash.txt", "alpha's")
    identifier = sync.create(alpha, beta)
    wait_until(lambda: sync.state(identifier).status == "staging-beta", 30, interval=0.02,
               what="staging on beta")
    write(beta, "clash.txt", "beta's")

    def conflicted():
        state = sync.state(identifier)
        return state if state.conflicts else None

    state = wait_until(conflicted, 60, interval=0.05, what="the conflict at clash.txt")
    assert [conflict.root for conflict in state.conflicts] == ["clash.txt"]
    assert read(alpha, "clash.txt") == b"alpha's"
    assert read(beta, "clash.txt") == b"beta's"
    assert read(beta, "big.bin") == big
    assert (read(beta, "a.txt"), read(beta, "dir/x.txt"), read(beta, "dir/deeper/y.txt")) == \
        (b"a", b"x", b"y")
    assert [(p.path, p.error) for p in state.beta.transition_problems] == \
        [("clash.txt", "modification detected")]
    assert state.alpha.transition_problems == []
    assert state.successful_cycles >= 1

    (path,) = glob.glob(os.path.join(sync.daemon.data_dir, "**", "archives", "*.archive"),
                        recursive=True)
    ancestor = archive.load(path)
    assert sorted(ancestor.contents) == ["a.txt", "big.bin", "dir"]
    assert sorted(ancestor.contents["dir"].contents) == ["deeper", "x.txt"]
