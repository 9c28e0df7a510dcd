"""Safe resolution of root-relative paths: bad paths are refused, symlinked parents never followed."""

import os

import pytest

from mutagen_actors.actors.sync.paths import (
    ParentError,
    RootError,
    UnsafePathError,
    lexical_inside,
    open_directory,
    open_root,
    parent_of,
    split_path,
)


@pytest.mark.parametrize(
    "path, components",
    [
        ("", []),
        ("a", ["a"]),
        ("a/b/c", ["a", "b", "c"]),
        ("..a/b..", ["..a", "b.."]),
        (".hidden/x", [".hidden", "x"]),
        ("with space/ü", ["with space", "ü"]),
        ("back\\slash", ["back\\slash"]),
    ],
)
def test_accepted_paths(path, components):
    assert split_path(path) == components


@pytest.mark.parametrize(
    "path, reason",
    [
        ("..", "'..' components"),
        ("../etc/passwd", "'..' components"),
        ("a/../../b", "'..' components"),
        ("a/..", "'..' components"),
        ("/etc/passwd", "absolute"),
        ("/", "absolute"),
        ("a//b", "empty path component"),
        ("a/", "empty path component"),
        ("./a", "'.' components"),
        ("a/./b", "'.' components"),
        ("a\x00b", "NUL byte"),
    ],
)
def test_refused_paths(path, reason):
    with pytest.raises(UnsafePathError, match=reason):
        split_path(path)


def test_non_text_path_is_refused():
    with pytest.raises(UnsafePathError, match="expected text"):
        split_path(b"a")  # type: ignore[arg-type]


def test_symlinked_parent_is_never_followed(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    fd = open_root(str(root))
    try:
        with pytest.raises(ParentError, match="symbolic link"):
            with parent_of(fd, "link/file"):
                pass
        with pytest.raises(ParentError, match="symbolic link"):
            open_directory(fd, ["link"])
    finally:
        os.close(fd)


def test_file_as_parent_and_missing_parent(tmp_path):
    (tmp_path / "file").write_text("x")
    fd = open_root(str(tmp_path))
    try:
        with pytest.raises(ParentError, match="not a directory"):
            open_directory(fd, ["file", "x"])
        with pytest.raises(ParentError, match="does not exist"):
            open_directory(fd, ["missing"])
    finally:
        os.close(fd)


def test_parent_of_yields_parent_descriptor(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    fd = open_root(str(tmp_path))
    try:
        with parent_of(fd, "a/b/new") as (parent, name):
            assert name == "new"
            os.mkdir(name, dir_fd=parent)
        assert (tmp_path / "a" / "b" / "new").is_dir()
        with pytest.raises(UnsafePathError, match="root has no parent"):
            with parent_of(fd, ""):
                pass
    finally:
        os.close(fd)


def test_root_that_is_a_symlink_or_missing(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with pytest.raises(RootError, match="symbolic link"):
        open_root(str(tmp_path / "alias"))
    with pytest.raises(RootError, match="does not exist"):
        open_root(str(tmp_path / "missing"))


def test_lexical_inside(tmp_path):
    assert lexical_inside("/r", "") == "/r"
    assert lexical_inside("/r", "a/b") == "/r/a/b"
    with pytest.raises(UnsafePathError):
        lexical_inside("/r", "../x")
