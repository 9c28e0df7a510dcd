"""Persisted session records: ``<data dir>/sessions/<id>.json``, one file per session.

Writes are atomic (temporary file in the same directory, fsync, rename, fsync of the directory):
after a crash at any moment a record is either the old one or the new one. ``load_all`` skips a
record it cannot read (logged, and renamed ``<name>.corrupt`` so it is kept for inspection);
the daemon still starts. The ``spec`` field is owned by the session kind (debug sessions store
their actor count; sync and forward sessions their configuration).

Halts survive a restart: ``halted`` is the machine status of a halted session
(``halted-on-actor-failure`` when the restart budget was spent, or a sync safety status such as
``halted-on-root-emptied``), ``halt_reason`` its text and ``halt_exits`` the last exit of each
actor then (what the status shows). Empty ``halted``: not halted. ``save_halt`` updates these
three fields of the record on disk (read, replace, atomic write), leaving the others as they are.
"""

from __future__ import annotations

import os

import msgspec
import structlog

from mutagen_actors.actors.sync.atomic import write_atomically

log = structlog.get_logger("supervisor.persistence")


class SessionRecord(msgspec.Struct, forbid_unknown_fields=False):
    id: str
    name: str
    kind: str
    created: float
    spec: dict = {}
    paused: bool = False
    halted: str = ""
    halt_reason: str = ""
    halt_exits: dict = {}


def _path(directory: str, session_id: str) -> str:
    if not session_id or "/" in session_id or session_id.startswith("."):
        raise ValueError(f"invalid session id {session_id!r}")
    return os.path.join(directory, f"{session_id}.json")


def save(directory: str, record: SessionRecord) -> None:
    data = msgspec.json.encode(record)
    write_atomically(
        _path(directory, record.id), data, mode=0o600, temporary_prefix=".tmp-", temporary_suffix=".json"
    )


def save_halt(directory: str, record: SessionRecord, halted: str, halt_reason: str = "",
              halt_exits: dict | None = None) -> bool:
    """Set (``halted`` non-empty) or clear (empty) the halt of ``record``, in memory and in its
    file; the file's other fields are kept as they are on disk. False (nothing written) when the
    file is gone (the session was terminated) or unreadable."""
    record.halted = halted
    record.halt_reason = halt_reason if halted else ""
    record.halt_exits = dict(halt_exits or {}) if halted else {}
    path = _path(directory, record.id)
    try:
        with open(path, "rb") as stream:
            current = msgspec.json.decode(stream.read(), type=SessionRecord)
    except FileNotFoundError:
        return False
    except (OSError, msgspec.DecodeError) as error:
        log.error("session record not updated with its halt", path=path, error=str(error))
        return False
    save(directory, msgspec.structs.replace(current, halted=record.halted,
                                            halt_reason=record.halt_reason,
                                            halt_exits=record.halt_exits))
    return True


def delete(directory: str, session_id: str) -> None:
    try:
        os.unlink(_path(directory, session_id))
    except FileNotFoundError:
        pass


def load_all(directory: str) -> list[SessionRecord]:
    """Every readable record, oldest first."""
    records = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith(".tmp-"):
            os.unlink(path)  # an interrupted write; the previous record (if any) is intact
            continue
        if not name.endswith(".json"):
            continue
        try:
            with open(path, "rb") as stream:
                records.append(msgspec.json.decode(stream.read(), type=SessionRecord))
        except (OSError, msgspec.DecodeError) as error:
            log.error("unreadable session record set aside", path=path, error=str(error))
            os.replace(path, path + ".corrupt")
    records.sort(key=lambda r: r.created)
    return records
