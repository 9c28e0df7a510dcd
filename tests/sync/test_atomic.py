"""write_atomically against the real filesystem: content, mode, temporary names, failure cleanup."""

from __future__ import annotations

import os
import stat

import pytest

from mutagen_actors.actors.sync.atomic import write_atomically


@pytest.mark.parametrize(
    ("existing", "data", "mode"),
    [
        (None, b"", 0o600),
        (None, b"new", 0o600),
        (b"old content", b"replacement", 0o600),
        (b"old", b"x" * (1 << 20), 0o644),
    ],
)
def test_writes_content_with_mode_and_leaves_no_temporary(tmp_path, existing, data, mode):
    target = tmp_path / "file"
    if existing is not None:
        target.write_bytes(existing)
    previous = os.umask(0o022)
    try:
        write_atomically(str(target), data, mode=mode, temporary_prefix=".tmp-", temporary_suffix=".json")
    finally:
        os.umask(previous)
    assert target.read_bytes() == data
    if existing is None:
        assert stat.S_IMODE(target.stat().st_mode) == mode
    assert os.listdir(tmp_path) == ["file"]


@pytest.mark.parametrize("tolerate", [False, True])
def test_failed_rename_keeps_old_file_and_removes_temporary(tmp_path, tolerate):
    (tmp_path / "target").mkdir()  # renaming a file over a directory fails
    with pytest.raises(OSError):
        write_atomically(str(tmp_path / "target"), b"data", temporary_prefix=".x-", tolerate_directory_errors=tolerate)
    assert sorted(os.listdir(tmp_path)) == ["target"]
    assert (tmp_path / "target").is_dir()


def test_missing_directory_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_atomically(str(tmp_path / "absent" / "file"), b"data")
