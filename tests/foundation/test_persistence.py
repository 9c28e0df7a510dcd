"""Session records and the data directory (pure file-system shells, real files)."""

from __future__ import annotations

import os
import stat

import pytest

from mutagen_actors.supervisor import datadir, persistence
from mutagen_actors.supervisor.persistence import SessionRecord


def test_records_round_trip_oldest_first(tmp_path):
    directory = str(tmp_path)
    newer = SessionRecord("debug_b", "", "debug", created=2.0, spec={"actors": 2})
    older = SessionRecord("debug_a", "first", "debug", created=1.0, spec={"actors": 1})
    persistence.save(directory, newer)
    persistence.save(directory, older)
    assert persistence.load_all(directory) == [older, newer]
    persistence.save(directory, SessionRecord("debug_b", "renamed", "debug", created=2.0))
    assert [r.name for r in persistence.load_all(directory)] == ["first", "renamed"]
    persistence.delete(directory, "debug_a")
    persistence.delete(directory, "debug_a")  # deleting twice is fine
    assert [r.id for r in persistence.load_all(directory)] == ["debug_b"]


def test_unreadable_records_are_set_aside_and_interrupted_writes_removed(tmp_path):
    directory = str(tmp_path)
    persistence.save(directory, SessionRecord("debug_ok", "", "debug", created=1.0))
    (tmp_path / "debug_bad.json").write_text("{not json")
    (tmp_path / ".tmp-123.json").write_text("half written")
    assert [r.id for r in persistence.load_all(directory)] == ["debug_ok"]
    assert sorted(os.listdir(directory)) == ["debug_bad.json.corrupt", "debug_ok.json"]


@pytest.mark.parametrize("bad", ["", "../x", ".hidden", "a/b"])
def test_record_ids_cannot_escape_the_directory(tmp_path, bad):
    with pytest.raises(ValueError):
        persistence.save(str(tmp_path), SessionRecord(bad, "", "debug", created=0.0))


def test_prepare_creates_private_directories_and_tightens_loose_ones(tmp_path):
    root = tmp_path / "data"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    paths = datadir.prepare(datadir.Paths(str(root)))
    for path in (paths.root, paths.daemon, paths.mailboxes, paths.sessions):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"MUTAGEN_ACTORS_DATA_DIRECTORY": "/x/y/"}, "/x/y"),
        ({"HOME": "/home/u"}, "/home/u/.mutagen-actors"),
    ],
)
def test_resolve(environ, expected, monkeypatch):
    monkeypatch.setenv("HOME", environ.get("HOME", "/home/u"))
    assert datadir.resolve(environ).root == expected


def test_paths_too_long_for_unix_sockets_are_refused(tmp_path):
    with pytest.raises(datadir.DataDirectoryError, match="too long for unix sockets"):
        datadir.prepare(datadir.Paths("/tmp/" + "x" * 100))
