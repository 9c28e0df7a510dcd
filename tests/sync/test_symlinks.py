"""Symbolic-link validity per symlink mode (reference §5)."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.sync.settings import SymlinkMode
from mutagen_actors.actors.sync.symlinks import MAXIMUM_PORTABLE_TARGET_LENGTH, symlink_problem

P = "invalid symbolic link: "
OUTSIDE = P + "target references location outside synchronization root"

# (target, link path, problem in portable mode)
PORTABLE = [
    ("file", "link", None),
    ("dir/file", "link", None),
    ("./file", "link", None),
    (".", "link", None),
    ("..", "link", OUTSIDE),
    ("../x", "link", OUTSIDE),
    ("../x", "a/link", None),
    ("../../x", "a/link", OUTSIDE),
    ("../../x", "a/b/link", None),
    ("a/../../x", "link", OUTSIDE),  # a/.. is back at the link's level, then one more up
    ("a/../x", "link", None),
    ("./../x", "link", OUTSIDE),
    ("x/../..", "d/link", None),
    ("x/../../..", "d/link", OUTSIDE),
    ("a//..//..", "link", None),  # empty components count as going down
    ("", "link", P + "target empty"),
    ("/etc/passwd", "link", P + "target is absolute"),
    ("/", "a/b/link", P + "target is absolute"),
    ("C:/Windows", "link", P + "colon in target (absolute or unsupported path)"),
    ("a:b", "link", P + "colon in target (absolute or unsupported path)"),
    ("a\\b", "link", P + "backslash in target"),
    ("x" * MAXIMUM_PORTABLE_TARGET_LENGTH, "link", None),
    ("x" * (MAXIMUM_PORTABLE_TARGET_LENGTH + 1), "link", P + "target too long"),
    ("é" * 124, "link", P + "target too long"),  # 248 bytes in UTF-8
    ("é" * 123, "link", None),
    ("name with spaces", "dir/link", None),
]


@pytest.mark.parametrize("target, link_path, problem", PORTABLE)
def test_portable_mode(target, link_path, problem):
    assert symlink_problem(target, link_path, SymlinkMode.PORTABLE) == problem


@pytest.mark.parametrize(
    "target, problem",
    [
        ("/etc/passwd", None),
        ("../../../../outside", None),
        ("C:\\x", None),
        ("a:b", None),
        ("x" * 4000, None),
        ("", P + "target empty"),
    ],
)
def test_posix_raw_mode_copies_anything_but_an_empty_target(target, problem):
    assert symlink_problem(target, "a/link", SymlinkMode.POSIX_RAW) == problem


def test_ignore_mode_is_not_a_question_for_this_function():
    with pytest.raises(ValueError, match="ignore"):
        symlink_problem("x", "link", SymlinkMode.IGNORE)
