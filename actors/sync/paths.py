"""Safe resolution of root-relative paths (invariant 6: nobody writes outside the root).

Paths that arrive from the other side are root-relative, ``/``-separated, and the root itself is
``""``. Before anything touches the disk, a path is split into components and rejected if it is
absolute, contains an empty, ``.`` or ``..`` component, or a NUL byte. Resolution then walks the
components one directory file descriptor at a time with ``O_DIRECTORY | O_NOFOLLOW``, so a
symbolic link (or a non-directory) in a parent component stops the walk instead of being followed;
every later operation is relative to the parent's descriptor (``dir_fd=``), so a parent swapped for
a symlink after the check cannot redirect it.

Failure rules:
- ``UnsafePathError`` (a ``ValueError``): the path text itself is not acceptable. Never retried.
- ``ParentError`` (an ``OSError`` subclass carrying ``errno``): the path is well-formed but its
  parent cannot be reached safely (missing, not a directory, a symbolic link).
- ``RootError``: the root cannot be opened as a real directory (absent, a symlink, a file).
"""

from __future__ import annotations

import errno
import os
import stat as _stat
from contextlib import contextmanager
from typing import Iterator, Optional

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePathError(ValueError):
    """A root-relative path that must never be resolved."""


class ParentError(OSError):
    """A parent component is missing, not a directory or a symbolic link."""


class RootError(OSError):
    """The synchronization root cannot be opened as a real directory."""


def split_path(path: str) -> list[str]:
    """Validate a root-relative path and return its components (``[]`` for the root).

    Raises ``UnsafePathError`` naming the path and what is wrong with it.
    """
    if not isinstance(path, str):
        raise UnsafePathError(f"invalid path {path!r}: expected text, got {type(path).__name__}")
    if path == "":
        return []
    if "\x00" in path:
        raise UnsafePathError(f"invalid path {path!r}: contains a NUL byte")
    if path.startswith("/"):
        raise UnsafePathError(f"invalid path {path!r}: absolute paths are not allowed")
    components = path.split("/")
    for component in components:
        if component == "":
            raise UnsafePathError(f"invalid path {path!r}: empty path component")
        if component == "..":
            raise UnsafePathError(f"invalid path {path!r}: '..' components are not allowed")
        if component == ".":
            raise UnsafePathError(f"invalid path {path!r}: '.' components are not allowed")
    return components


def open_root(root: str) -> int:
    """Open the root directory; its own final component must not be a symbolic link."""
    try:
        return os.open(root, _DIR_FLAGS)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(root, None):
            raise RootError(errno.ELOOP, "synchronization root is a symbolic link", root) from None
        if error.errno == errno.ENOTDIR:
            raise RootError(errno.ENOTDIR, "synchronization root is not a directory", root) from None
        if error.errno == errno.ENOENT:
            raise RootError(errno.ENOENT, "synchronization root does not exist", root) from None
        raise RootError(error.errno, f"unable to open synchronization root: {error.strerror}", root) from None


def _is_symlink(name: str, dir_fd) -> bool:
    # O_DIRECTORY | O_NOFOLLOW on a symlink fails with ENOTDIR (not ELOOP) on Linux: ask lstat.
    try:
        return os.path.islink(name) if dir_fd is None else _stat.S_ISLNK(
            os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        )
    except OSError:
        return False


def open_directory(root_fd: int, components: list[str]) -> int:
    """Open the directory at ``components`` below ``root_fd`` without following symlinks.

    Returns a new descriptor (the caller closes it); ``[]`` returns a duplicate of ``root_fd``.
    """
    fd = os.dup(root_fd)
    walked: list[str] = []
    try:
        for component in components:
            walked.append(component)
            try:
                next_fd = os.open(component, _DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                shown = "/".join(walked)
                if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(component, fd):
                    raise ParentError(errno.ELOOP, "path component is a symbolic link", shown) from None
                if error.errno == errno.ENOTDIR:
                    raise ParentError(errno.ENOTDIR, "path component is not a directory", shown) from None
                if error.errno == errno.ENOENT:
                    raise ParentError(errno.ENOENT, "parent path does not exist", shown) from None
                raise ParentError(error.errno, error.strerror, shown) from None
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def parent_of(root_fd: int, path: str) -> Iterator[tuple[int, str]]:
    """``(parent_fd, name)`` for a non-root path, the descriptor closed on exit.

    Raises ``UnsafePathError`` for a bad path (including the root ``""``, which has no parent
    inside the root) and ``ParentError`` when the parent cannot be reached safely.
    """
    components = split_path(path)
    if not components:
        raise UnsafePathError("invalid path '': the root has no parent inside the root")
    fd = open_directory(root_fd, components[:-1])
    try:
        yield fd, components[-1]
    finally:
        os.close(fd)


def lexical_inside(root: str, path: str) -> str:
    """The absolute on-disk path for a validated root-relative path (for messages and reads that
    do not need descriptor safety; never use it to write)."""
    components = split_path(path)
    return os.path.join(root, *components) if components else root


def directory_device(path: str, *, nearest: bool) -> Optional[int]:
    """The device of directory ``path`` (with ``nearest``: of its nearest existing ancestor,
    where it would be created); None if there is none."""
    path = os.path.abspath(path)
    while True:
        try:
            st = os.stat(path)
            return st.st_dev if _stat.S_ISDIR(st.st_mode) else None
        except OSError:
            parent = os.path.dirname(path)
            if not nearest or parent == path:
                return None
            path = parent
