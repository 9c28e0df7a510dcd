"""Permission and ownership rules (pure apart from user/group look-ups; reference §5).

``portable`` (default): only the executable bit of files travels. A file counts as executable
when any of u/g/o x is set. New files get the default file mode (0600 unless configured), plus x
for every class that has r when the file is executable (0600 -> 0700, 0644 -> 0755); the default
file mode may not contain x bits. ``manual``: executability is not recorded; new files get exactly
the default file mode (x bits allowed). New directories get the default directory mode (0700).
Ownership of created content is the configured default owner/group, given as a name or
``id:N``. Modes and ownership of existing content are never synchronized.

Every parse/validate function raises ValueError with a one-line message naming the setting.
"""

from __future__ import annotations

import grp
import pwd

from .settings import PermissionsMode

PERMISSION_BITS = 0o777
_ANY_EXECUTE = 0o111
_ANY_READ = 0o444
MAXIMUM_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to chown, so it is not an identity


def parse_mode(text: str, what: str) -> int:
    """Parse an octal permission mode ("0644", "644", "0o644") for the setting named ``what``."""
    cleaned = text.strip()
    digits = cleaned[2:] if cleaned[:2] in ("0o", "0O") else cleaned
    if not digits or any(c not in "01234567" for c in digits):
        raise ValueError(f"invalid {what} {text!r}: expected an octal mode such as 0644")
    mode = int(digits, 8)
    if mode & ~PERMISSION_BITS:
        raise ValueError(f"invalid {what} {text!r}: only permission bits (at most 0777) are allowed")
    if mode == 0:
        raise ValueError(f"invalid {what} {text!r}: a zero mode would make new content unusable")
    return mode


def validate_default_file_mode(mode: int, permissions_mode: PermissionsMode) -> None:
    """Reject a default file mode the permissions mode cannot use."""
    if mode <= 0 or mode & ~PERMISSION_BITS:
        raise ValueError(f"invalid default file mode {mode:#o}: expected permission bits between 0001 and 0777")
    if permissions_mode is PermissionsMode.PORTABLE and mode & _ANY_EXECUTE:
        raise ValueError(
            f"invalid default file mode {mode:04o}: it may not contain executable bits in portable permissions mode"
        )


def validate_default_directory_mode(mode: int) -> None:
    if mode <= 0 or mode & ~PERMISSION_BITS:
        raise ValueError(f"invalid default directory mode {mode:#o}: expected permission bits between 0001 and 0777")


def is_executable(st_mode: int) -> bool:
    """True if any of the user, group or other execute bits is set."""
    return bool(st_mode & _ANY_EXECUTE)


def new_file_mode(default_mode: int, executable: bool, permissions_mode: PermissionsMode) -> int:
    """The mode a newly written file gets.

    portable: ``default_mode``, plus x for each class that has r when ``executable``;
    manual: exactly ``default_mode``.
    """
    if permissions_mode is PermissionsMode.MANUAL:
        return default_mode
    mode = default_mode & ~_ANY_EXECUTE
    if executable:
        mode |= (mode & _ANY_READ) >> 2
    return mode


def with_executability(st_mode: int, executable: bool) -> int:
    """An existing file's permission bits after only its executable bit changed (portable chmod).

    Setting adds x where r is set (at least u+x); clearing removes every x.
    """
    bits = st_mode & 0o7777
    if not executable:
        return bits & ~_ANY_EXECUTE
    added = (bits & _ANY_READ) >> 2
    return bits | (added or 0o100)


def _parse_id(spec: str, what: str) -> int | None:
    if not spec.startswith("id:"):
        return None
    number = spec[3:]
    if not number.isascii() or not number.isdigit() or int(number) > MAXIMUM_ID:
        raise ValueError(f"invalid {what} {spec!r}: 'id:' must be followed by a number between 0 and {MAXIMUM_ID}")
    return int(number)


def parse_owner(spec: str) -> int:
    """User id for a default-owner setting: a user name, or ``id:N``."""
    uid = _parse_id(spec, "default owner")
    if uid is not None:
        return uid
    if not spec:
        raise ValueError("invalid default owner '': expected a user name or id:N")
    try:
        return pwd.getpwnam(spec).pw_uid
    except KeyError:
        raise ValueError(f"invalid default owner {spec!r}: no such user (use a user name or id:N)") from None


def parse_group(spec: str) -> int:
    """Group id for a default-group setting: a group name, or ``id:N``."""
    gid = _parse_id(spec, "default group")
    if gid is not None:
        return gid
    if not spec:
        raise ValueError("invalid default group '': expected a group name or id:N")
    try:
        return grp.getgrnam(spec).gr_gid
    except KeyError:
        raise ValueError(f"invalid default group {spec!r}: no such group (use a group name or id:N)") from None
