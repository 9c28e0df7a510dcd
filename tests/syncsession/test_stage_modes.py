"""``--stage-mode`` and ``--max-staging-file-size`` in a real local session (issue 6: "work as
in the reference"): while a big file is on its way (the transfer rate capped by the test-only
variable, so it lasts seconds), its partial copy is in the store the mode names, and nowhere
else; the store is emptied once the file is in place. A file above the maximum staging size is
not synced and the session says why; smaller files are."""

from __future__ import annotations

import os

import pytest

from .conftest import MIB, Sync, leftovers, wait_same, wait_until, write


def stores(sync: Sync, identifier: str, beta: str) -> dict[str, str]:
    name = f"{identifier}-beta"
    return {
        "mutagen": os.path.join(sync.daemon.data_dir, "staging", name),
        "neighboring": os.path.join(os.path.dirname(beta), f".mutagen-temporary-staging-{name}"),
        "internal": os.path.join(beta, f".mutagen-temporary-staging-{name}"),
    }


def holds_files(directory: str) -> bool:
    return any(files for _, _, files in os.walk(directory))


@pytest.mark.parametrize("mode", ["", "mutagen", "neighboring", "internal"])
def test_the_partial_copy_is_in_the_store_the_mode_names(throttled: Sync, roots, mode):
    sync = throttled
    alpha, beta = roots
    content = os.urandom(48 * MIB)  # three seconds at the capped rate
    write(alpha, "big.bin", content)
    write(beta, "already.txt", "the root exists: internal staging needs it")
    settings = {"stage_mode": mode} if mode else {}
    identifier = sync.create(alpha, beta, **settings)
    expected = mode or "mutagen"  # the default: the data directory (same filesystem here)
    where = stores(sync, identifier, beta)
    wait_until(lambda: holds_files(where[expected]), 30, interval=0.02,
               what=f"the partial copy in the {expected} store")
    others = [m for m, path in where.items() if m != expected and os.path.exists(path)]
    assert others == [], others
    wait_until(lambda: os.path.exists(os.path.join(beta, "big.bin"))
               and os.path.getsize(os.path.join(beta, "big.bin")) == len(content), 60,
               interval=0.05, what="the big file in place")
    sync.flush(identifier)
    with open(os.path.join(beta, "big.bin"), "rb") as stream:
        assert stream.read() == content
    assert not holds_files(where[expected])  # emptied after the transition
    assert not leftovers(alpha, beta)


def test_a_file_above_the_maximum_staging_size_is_not_synced_and_said(sync, roots):
    alpha, beta = roots
    write(alpha, "small.txt", "fits")
    write(alpha, "large.bin", os.urandom(3 * MIB))
    identifier = sync.create(alpha, beta, max_staging_file_size=1 * MIB)
    wait_until(lambda: os.path.exists(os.path.join(beta, "small.txt")), 30,
               what="the small file synced")
    sync.flush(identifier)
    assert not os.path.exists(os.path.join(beta, "large.bin"))

    def said():
        state = sync.state(identifier)
        texts = [p.error for p in state.beta.transition_problems + state.alpha.transition_problems]
        return [t for t in texts if "maximum staging file size" in t] or None

    problems = wait_until(said, 30, what="the size problem in the session's state")
    assert problems == ["staged file missing: staged file exceeds the maximum staging file size "
                        "(1048576 bytes)"]
    listed = sync.daemon.cli("sync", "list", "--long", identifier, check=True).stdout
    assert "large.bin: staged file missing: staged file exceeds the maximum staging file size" \
        in listed
    # and the session rests: no cycle after cycle sending the refused file again (it is sent
    # again when something changes, or a flush asks: once)
    wait_until(lambda: "Status: Watching for changes" in sync.daemon.cli(
        "sync", "list", identifier, check=True).stdout, 30, interval=0.1, what="the session at rest")
    before = staging_passes(sync.daemon.log_path)
    sync.flush(identifier)
    wait_until(lambda: "Status: Watching for changes" in sync.daemon.cli(
        "sync", "list", identifier, check=True).stdout, 30, interval=0.1, what="the session at rest")
    assert staging_passes(sync.daemon.log_path) - before == 1


def staging_passes(log_path: str) -> int:
    with open(log_path) as stream:
        return sum('"staging done"' in line for line in stream)
