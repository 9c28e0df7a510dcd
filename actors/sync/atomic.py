"""Atomic replacement of a small file: after a crash at any moment it holds the old or the new bytes.

``write_atomically(path, data)`` writes ``data`` to a new temporary file in the same directory as
``path`` (name ``<temporary_prefix><16 hex digits><temporary_suffix>``, created exclusively with
``mode``, subject to the umask), fsyncs it, renames it over ``path`` and then fsyncs the directory
so the rename itself is durable.

Failure rules: any error while creating, writing, fsyncing or renaming the temporary file (and any
interruption such as ``KeyboardInterrupt``) removes the temporary file (best effort) and re-raises
the original exception; ``path`` is then untouched. The directory must exist (callers create it).
An error opening or fsyncing the directory after the rename propagates, unless
``tolerate_directory_errors`` is true, in which case it is ignored (the new content is in place;
only its durability across a power loss is weaker). Loaders of such directories should skip (or
remove) names starting with the caller's ``temporary_prefix``: they are interrupted writes.

Importable by both the agent and the daemon (depends on the standard library only).
"""

from __future__ import annotations

import os
import secrets


def write_atomically(
    path: str,
    data: bytes,
    *,
    mode: int = 0o600,
    temporary_prefix: str = ".tmp-",
    temporary_suffix: str = "",
    tolerate_directory_errors: bool = False,
) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see the module docstring)."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f"{temporary_prefix}{secrets.token_hex(8)}{temporary_suffix}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_directory(directory, tolerate_errors=tolerate_directory_errors)


def _fsync_directory(directory: str, *, tolerate_errors: bool) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        if tolerate_errors:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not tolerate_errors:
            raise
    finally:
        os.close(fd)
