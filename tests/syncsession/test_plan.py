"""Pure helpers of the sync cycle and of the daemon's sync manager, as tables."""

from __future__ import annotations

from collections import deque

import pytest

from mutagen_actors.actors.sync.model import Change, Entry, Problem
from mutagen_actors.actors.syncsession import archive
from mutagen_actors.actors.syncsession.plan import files_to_stage, next_ancestor, take_batch
from mutagen_actors.supervisor import sync_manager
from mutagen_actors.wire.messages import sync as sm
from mutagen_actors.wire.messages.endpoint import StageItem, SupplyRequest

A, B, C = b"a" * 16, b"b" * 16, b"c" * 16
FILE_A, FILE_B, FILE_C = Entry.file(A), Entry.file(B), Entry.file(C)
EXEC_A = Entry.file(A, executable=True)
LINK = Entry.symlink("target")
D = Entry.directory


@pytest.mark.parametrize("changes, expected", [
    pytest.param([Change("f", None, FILE_A)], [("f", A)], id="new file"),
    pytest.param([Change("f", FILE_A, FILE_B)], [("f", B)], id="edited file"),
    pytest.param([Change("f", FILE_A, EXEC_A)], [], id="executable bit only"),
    pytest.param([Change("f", FILE_A, None)], [], id="deletion"),
    pytest.param([Change("l", None, LINK)], [], id="symlink needs no content"),
    pytest.param([Change("d", None, D({"x": FILE_A, "y": D({"z": FILE_B})}))],
                 [("d/x", A), ("d/y/z", B)], id="new directory tree"),
    pytest.param([Change("d", D({"x": FILE_A, "y": FILE_B}), D({"x": FILE_A, "y": FILE_C}))],
                 [("d/y", C)], id="directory merge: only what differs"),
    pytest.param([Change("d", FILE_A, D({"x": FILE_A}))], [("d/x", A)],
                 id="file replaced by directory"),
    pytest.param([Change("d", D({"x": FILE_A}), FILE_A)], [("d", A)],
                 id="directory replaced by file"),
    pytest.param([Change("a", None, FILE_A), Change("b", None, FILE_A)], [("a", A), ("b", A)],
                 id="same content at two paths: one item per path"),
])
def test_files_to_stage(changes, expected):
    assert files_to_stage(changes) == [StageItem(p, d) for p, d in expected]


def _queue(*paths):
    return deque((StageItem(p, A), 0) for p in paths)


@pytest.mark.parametrize("paths, sizes, budget, expected, left", [
    pytest.param(["a", "b", "c"], {"a": 10, "b": 10, "c": 10}, 100, [("a", 0), ("b", 0), ("c", 0)],
                 0, id="all fit"),
    pytest.param(["a", "b", "c"], {"a": 40, "b": 40, "c": 40}, 100, [("a", 0), ("b", 0)], 1,
                 id="stop before the budget is exceeded"),
    pytest.param(["big", "b"], {"big": 1000, "b": 1}, 100, [("big", 0)], 1,
                 id="a big file alone (read in pieces)"),
    pytest.param(["a", "b"], {}, 100, [("a", 0)], 1, id="unknown size counts as a whole batch"),
    pytest.param(["a", "b"], {"a": 0, "b": 0}, 100, [("a", 0), ("b", 0)], 0, id="empty files"),
])
def test_take_batch(paths, sizes, budget, expected, left):
    queue = _queue(*paths)
    assert take_batch(queue, sizes, budget) == [SupplyRequest(p, A, o) for p, o in expected]
    assert len(queue) == left


@pytest.mark.parametrize("max_items, expected, left", [
    pytest.param(2, [("a", 0), ("b", 0)], 1, id="at most max_items"),
    pytest.param(1, [("a", 0)], 2, id="one at a time"),
    pytest.param(0, [("a", 0), ("b", 0), ("c", 0)], 0, id="0: no item limit"),
])
def test_take_batch_item_limit(max_items, expected, left):
    queue = _queue("a", "b", "c")
    batch = take_batch(queue, {"a": 1, "b": 1, "c": 1}, 100, max_items)
    assert batch == [SupplyRequest(p, A, o) for p, o in expected]
    assert len(queue) == left


def test_take_batch_continues_a_partly_read_file_at_its_offset():
    queue = deque([(StageItem("big", A), 300)])
    assert take_batch(queue, {"big": 1000}, 100) == [SupplyRequest("big", A, 300)]


@pytest.mark.parametrize("ancestor, ancestor_changes, alpha, beta, expected", [
    pytest.param(None, [Change("", None, D())], [], [Change("x", None, FILE_A)],
                 D({"x": FILE_A}), id="root created, then a file on beta"),
    pytest.param(D({"x": FILE_A}), [], [Change("x", FILE_A, FILE_B)], [], D({"x": FILE_B}),
                 id="actual result of alpha"),
    pytest.param(D({"x": FILE_A}), [], [Change("x", FILE_A, FILE_A)], [], D({"x": FILE_A}),
                 id="failed change keeps what is there"),
    pytest.param(D({"x": FILE_A}), [], [], [Change("x", FILE_A, None)], D(),
                 id="deletion"),
    pytest.param(D(), [], [], [Change("d", None, D({"ok": FILE_A, "bad": Entry.problematic("x")}))],
                 D({"d": D({"ok": FILE_A})}), id="only synchronizable content is recorded"),
])
def test_next_ancestor(ancestor, ancestor_changes, alpha, beta, expected):
    assert next_ancestor(ancestor, ancestor_changes, alpha, beta) == expected


@pytest.mark.parametrize("ancestor, change", [
    pytest.param(D(), Change("missing/x", None, FILE_A), id="parent missing"),
    pytest.param(D(), Change("..", None, FILE_A), id="bad name"),
    pytest.param(D(), Change("d", None, D({"x": Entry.file(b"")})), id="file without digest"),
    pytest.param(None, Change("", None, D({"": FILE_A})), id="bad tree without an ancestor"),
])
def test_next_ancestor_refuses_what_does_not_fit_or_is_invalid(ancestor, change):
    with pytest.raises(ValueError):
        next_ancestor(ancestor, [], [change], [])


def test_archive_round_trip_and_corruption(tmp_path):
    path = str(tmp_path / "archives" / "s.archive")
    assert archive.load(path) is None
    root = D({"x": FILE_A, "d": D({"l": LINK})})
    archive.save(path, root)
    assert archive.load(path) == root
    with open(path, "wb") as stream:
        stream.write(b"\x93garbage")
    with pytest.raises(archive.ArchiveError):
        archive.load(path)
    archive.delete(path)
    assert archive.load(path) is None


def url(path: str, protocol: str = "local") -> sm.EndpointUrl:
    return sm.EndpointUrl(protocol=protocol, path=path)


@pytest.mark.parametrize("alpha, beta, message", [
    (url("/tmp/x"), url("/tmp/x"), "alpha and beta are the same path"),
    (url("/tmp/x/"), url("/tmp/x"), "alpha and beta are the same path"),
    (url("/tmp/x/y"), url("/tmp/x"), "alpha (/tmp/x/y) is inside beta (/tmp/x)"),
    (url("/tmp/x"), url("/tmp/x/y/z"), "beta (/tmp/x/y/z) is inside alpha (/tmp/x)"),
    (url("relative"), url("/tmp/x"), "alpha: the path must be absolute"),
    (url("/srv", "ftp"), url("/tmp/x"), "alpha: unknown endpoint protocol 'ftp'"),
    (url("/tmp/x"), sm.EndpointUrl(protocol="ssh", path="/srv"), "beta: the ssh URL has no host"),
])
def test_bad_roots(alpha, beta, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        sync_manager.validate_roots(alpha, beta)


def test_roots_side_by_side_with_a_common_prefix_are_fine():
    assert sync_manager.validate_roots(url("/tmp/x"), url("/tmp/xy")) == ("/tmp/x", "/tmp/xy")


@pytest.mark.parametrize("configuration, message", [
    (sm.SyncConfiguration(mode="two-way"), "invalid synchronization mode"),
    (sm.SyncConfiguration(hash="md5"), "invalid hash algorithm"),
    (sm.SyncConfiguration(endpoint=sm.EndpointConfiguration(watch_mode="sometimes")),
     "invalid watch mode"),
    (sm.SyncConfiguration(beta=sm.EndpointConfiguration(stage_mode="elsewhere")),
     "invalid stage mode"),
    (sm.SyncConfiguration(ignores=["a/**/[b"]), "invalid ignore pattern"),
])
def test_bad_configuration(configuration, message):
    with pytest.raises(ValueError, match=message):
        sync_manager.validate_configuration(configuration)


def test_side_settings_override_session_settings_override_defaults():
    configuration = sm.SyncConfiguration(
        endpoint=sm.EndpointConfiguration(watch_mode="force-poll", max_entry_count=7),
        beta=sm.EndpointConfiguration(watch_mode="no-watch"))
    alpha = sync_manager.endpoint_settings(configuration, "alpha")
    beta = sync_manager.endpoint_settings(configuration, "beta")
    assert (alpha["watch_mode"], beta["watch_mode"]) == ("force-poll", "no-watch")
    assert alpha["max_entry_count"] == beta["max_entry_count"] == 7
    assert alpha["scan_mode"] == "accelerated" and alpha["hash"] == "xxh128"


def test_mailbox_tokens_are_stable_and_distinct():
    tokens = {sync_manager.mailbox_token("sync_x", child) for child in sync_manager.CHILDREN}
    assert len(tokens) == 5 and all(len(t) == 16 for t in tokens)
    assert sync_manager.mailbox_token("sync_x", "alpha") == sync_manager.mailbox_token("sync_x",
                                                                                        "alpha")


# ------------------------------------------------------------ why a file is missing

from mutagen_actors.actors.sync import transition as _transition  # noqa: E402
from mutagen_actors.actors.syncsession.plan import STAGED_MISSING, explain_missing  # noqa: E402

_LIMIT = "staged file exceeds the maximum staging file size (1048576 bytes)"


@pytest.mark.parametrize("transition, staging, expected", [
    ([], [], []),
    ([Problem("a", STAGED_MISSING)], [], [Problem("a", STAGED_MISSING)]),
    ([Problem("a", STAGED_MISSING)], [Problem("a", _LIMIT)],
     [Problem("a", f"{STAGED_MISSING}: {_LIMIT}")]),
    # another path's refusal explains nothing here; other problems stay as they are, in order
    ([Problem("b", "modification detected"), Problem("a", STAGED_MISSING)],
     [Problem("c", _LIMIT)],
     [Problem("b", "modification detected"), Problem("a", STAGED_MISSING)]),
    ([Problem("a", "modification detected")], [Problem("a", _LIMIT)],
     [Problem("a", "modification detected")]),
    # the first refusal of a path is the cause (later pieces arrive "out of order")
    ([Problem("a", STAGED_MISSING)], [Problem("a", _LIMIT), Problem("a", "out of order")],
     [Problem("a", f"{STAGED_MISSING}: {_LIMIT}")]),
])
def test_explain_missing(transition, staging, expected):
    assert explain_missing(transition, staging) == expected


def test_the_missing_text_is_the_transitions():
    assert STAGED_MISSING == _transition.STAGED_MISSING


from mutagen_actors.actors.syncsession.plan import run_again_at_once  # noqa: E402


@pytest.mark.parametrize("missing, transition, staging, expected", [
    (False, [], [], False),
    (True, [Problem("a", STAGED_MISSING)], [], True),  # changed while staged: go again
    (True, [Problem("a", STAGED_MISSING)], [Problem("a", _LIMIT)], False),  # refused for good
    (True, [Problem("a", STAGED_MISSING), Problem("b", STAGED_MISSING)],
     [Problem("a", _LIMIT)], True),  # b was not refused
    (True, [], [Problem("a", _LIMIT)], True),  # missing, but no problem says which: go again
])
def test_run_again_at_once(missing, transition, staging, expected):
    assert run_again_at_once(missing, transition, staging) is expected
