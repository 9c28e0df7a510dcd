"""Which symbolic links a session may synchronize (pure; reference §5 "Symbolic links").

``symlink_problem(target, link_path, mode)`` returns ``None`` when the link can be synchronized
as it is, else the problem text the scan records for it (the entry becomes problematic, shows up
as a scan problem, and is never propagated or deleted).

- ``portable`` (default): the target must be non-empty, at most 247 bytes (UTF-8), free of ``:``
  and ``\\``, relative, and must never climb above the synchronization root: walking the target's
  components from the link's directory, ``..`` goes up one level, ``.`` stays, anything else
  (including an empty component from ``a//b``) goes down one; the level may never drop below the
  root. The check is lexical: the link is copied, never followed.
- ``posix-raw``: the target is copied verbatim; only an empty target is a problem.
- ``ignore`` is the scanner's business (symlinks become untracked); asking here is a bug.

The texts follow Mutagen's wording, prefixed with ``invalid symbolic link: ``.
"""

from __future__ import annotations

from .settings import SymlinkMode

MAXIMUM_PORTABLE_TARGET_LENGTH = 247
PROBLEM_PREFIX = "invalid symbolic link: "


def portable_target_problem(target: str, link_path: str) -> str | None:
    """The reason (without prefix) ``target`` is not portable for a link at ``link_path``."""
    if target == "":
        return "target empty"
    if len(target.encode("utf-8", "surrogateescape")) > MAXIMUM_PORTABLE_TARGET_LENGTH:
        return "target too long"
    if ":" in target:
        return "colon in target (absolute or unsupported path)"
    if "\\" in target:
        return "backslash in target"
    if target.startswith("/"):
        return "target is absolute"
    # The link's own name does not count: dereferencing starts from its directory.
    depth = link_path.count("/")
    for component in target.split("/"):
        if component == "..":
            depth -= 1
            if depth < 0:
                return "target references location outside synchronization root"
        elif component != ".":
            depth += 1
    return None


def symlink_problem(target: str, link_path: str, mode: SymlinkMode) -> str | None:
    """None if the link at root-relative ``link_path`` may be synchronized, else the problem.

    Raises ValueError for ``SymlinkMode.IGNORE`` (ignored links are untracked, not checked).
    """
    if mode is SymlinkMode.POSIX_RAW:
        return PROBLEM_PREFIX + "target empty" if target == "" else None
    if mode is SymlinkMode.PORTABLE:
        reason = portable_target_problem(target, link_path)
        return None if reason is None else PROBLEM_PREFIX + reason
    raise ValueError(f"symbolic links are not checked in symlink mode {mode.value!r}")
