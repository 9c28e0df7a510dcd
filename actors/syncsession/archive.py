"""The ancestor archive of a sync session: ``<data dir>/archives/<session>.archive``.

``save(path, root)`` is atomic (temporary file beside it, fsync, rename, fsync of the directory):
after a crash the archive is the old one or the new one. ``load(path)`` returns the saved
ancestor, ``None`` (empty archive) when there is no file; an unreadable or corrupt archive raises
``ArchiveError`` (the session must not guess: starting from an empty ancestor is what ``reset``
does on purpose, and is safe in the two-way-safe mode only). ``delete`` removes it.
"""

from __future__ import annotations

import os
from typing import Optional

import msgspec

from mutagen_actors.actors.sync.apply import validate_ancestor
from mutagen_actors.actors.sync.atomic import write_atomically
from mutagen_actors.actors.sync.model import Entry

FORMAT_VERSION = 1


class ArchiveError(Exception):
    pass


class _Archive(msgspec.Struct, array_like=True):
    version: int
    root: Optional[Entry]


def archive_path(data_directory: str, session: str) -> str:
    return os.path.join(data_directory, "archives", f"{session}.archive")


def load(path: str) -> Optional[Entry]:
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ArchiveError(f"unable to read archive {path}: {error.strerror}") from None
    try:
        archive = msgspec.msgpack.decode(data, type=_Archive)
        if archive.version != FORMAT_VERSION:
            raise ArchiveError(f"archive {path} has format {archive.version}")
        validate_ancestor(archive.root)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as error:
        raise ArchiveError(f"archive {path} is corrupt: {error}") from None
    return archive.root


def save(path: str, root: Optional[Entry]) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    data = msgspec.msgpack.encode(_Archive(FORMAT_VERSION, root))
    write_atomically(path, data, mode=0o600, temporary_prefix=".tmp-")


def delete(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
