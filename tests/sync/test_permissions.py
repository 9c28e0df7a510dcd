"""Permission modes, default modes and ownership specifications (reference §5)."""

from __future__ import annotations

import grp
import os
import pwd

import pytest

from mutagen_actors.actors.sync.permissions import (
    is_executable,
    new_file_mode,
    parse_group,
    parse_mode,
    parse_owner,
    validate_default_directory_mode,
    validate_default_file_mode,
    with_executability,
)
from mutagen_actors.actors.sync.settings import PermissionsMode

PORTABLE = PermissionsMode.PORTABLE
MANUAL = PermissionsMode.MANUAL


@pytest.mark.parametrize(
    "text, mode",
    [("0644", 0o644), ("644", 0o644), ("0600", 0o600), ("0o755", 0o755), ("700", 0o700), ("0777", 0o777), ("1", 1), (" 0640 ", 0o640)],
)
def test_parse_mode(text, mode):
    assert parse_mode(text, "default file mode") == mode


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "expected an octal mode"),
        ("rw-r--r--", "expected an octal mode"),
        ("0648", "expected an octal mode"),
        ("0x1ff", "expected an octal mode"),
        ("-644", "expected an octal mode"),
        ("01000", "at most 0777"),
        ("4755", "at most 0777"),
        ("0", "zero mode"),
    ],
)
def test_parse_mode_rejects_with_the_setting_named(text, message):
    with pytest.raises(ValueError) as caught:
        parse_mode(text, "default directory mode")
    assert "invalid default directory mode" in str(caught.value)
    assert message in str(caught.value)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize(
    "mode, permissions_mode, ok",
    [
        (0o600, PORTABLE, True),
        (0o644, PORTABLE, True),
        (0o666, PORTABLE, True),
        (0o700, PORTABLE, False),
        (0o610, PORTABLE, False),
        (0o601, PORTABLE, False),
        (0o755, MANUAL, True),
        (0o700, MANUAL, True),
        (0, MANUAL, False),
        (0o1644, MANUAL, False),
    ],
)
def test_validate_default_file_mode(mode, permissions_mode, ok):
    if ok:
        validate_default_file_mode(mode, permissions_mode)
    else:
        with pytest.raises(ValueError, match="invalid default file mode"):
            validate_default_file_mode(mode, permissions_mode)


@pytest.mark.parametrize("mode, ok", [(0o700, True), (0o755, True), (0, False), (0o40755, False)])
def test_validate_default_directory_mode(mode, ok):
    if ok:
        validate_default_directory_mode(mode)
    else:
        with pytest.raises(ValueError, match="invalid default directory mode"):
            validate_default_directory_mode(mode)


@pytest.mark.parametrize(
    "st_mode, executable",
    [(0o100644, False), (0o100744, True), (0o100654, True), (0o100645, True), (0o100600, False), (0o100111, True), (0o100000, False)],
)
def test_is_executable_when_any_class_has_x(st_mode, executable):
    assert is_executable(st_mode) is executable


@pytest.mark.parametrize(
    "default, executable, permissions_mode, expected",
    [
        (0o600, False, PORTABLE, 0o600),
        (0o600, True, PORTABLE, 0o700),
        (0o644, False, PORTABLE, 0o644),
        (0o644, True, PORTABLE, 0o755),
        (0o640, True, PORTABLE, 0o750),
        (0o604, True, PORTABLE, 0o705),
        (0o200, True, PORTABLE, 0o200),  # no r, no x
        (0o666, True, PORTABLE, 0o777),
        (0o755, False, MANUAL, 0o755),
        (0o755, True, MANUAL, 0o755),
        (0o600, True, MANUAL, 0o600),  # manual never adds x
    ],
)
def test_new_file_mode(default, executable, permissions_mode, expected):
    assert new_file_mode(default, executable, permissions_mode) == expected


@pytest.mark.parametrize(
    "st_mode, executable, expected",
    [(0o644, True, 0o755), (0o600, True, 0o700), (0o755, False, 0o644), (0o200, True, 0o300), (0o4755, False, 0o4644)],
)
def test_with_executability_changes_only_x(st_mode, executable, expected):
    assert with_executability(st_mode, executable) == expected


def test_owner_and_group_by_name_and_by_id():
    me = pwd.getpwuid(os.getuid())
    my_group = grp.getgrgid(os.getgid())
    assert parse_owner(me.pw_name) == me.pw_uid
    assert parse_group(my_group.gr_name) == my_group.gr_gid
    assert parse_owner("id:0") == 0
    assert parse_owner("id:1234") == 1234
    assert parse_group("id:4321") == 4321


@pytest.mark.parametrize(
    "function, spec, message",
    [
        (parse_owner, "no-such-user-xyz", "invalid default owner 'no-such-user-xyz': no such user"),
        (parse_group, "no-such-group-xyz", "invalid default group 'no-such-group-xyz': no such group"),
        (parse_owner, "id:", "must be followed by a number"),
        (parse_owner, "id:abc", "must be followed by a number"),
        (parse_group, "id:-1", "must be followed by a number"),
        (parse_group, "id:4294967295", "must be followed by a number"),
        (parse_owner, "", "expected a user name or id:N"),
        (parse_group, "", "expected a group name or id:N"),
    ],
)
def test_unknown_owner_or_group_is_a_clear_error(function, spec, message):
    with pytest.raises(ValueError) as caught:
        function(spec)
    assert message in str(caught.value)
