"""Helpers the ``create`` commands share for reading flag values and naming flags in errors.

- ``flag(name)``: the command-line spelling of an option name (``default_owner`` ->
  ``--default-owner``).
- ``given(options, key)``: the flag's text, or ``None`` when the flag was absent or empty.
- ``flag_origin(flags, field, side, option)``: which flag set the value of ``field`` in force on
  ``side`` -- the per-side flag (``--<option>-<side>``), else the session-wide one
  (``--<option>``), else ``"configuration file"``. ``flags`` is the flags' configuration layer:
  it has ``common`` and one attribute per side, each with ``field`` (``None`` when not set).
- ``name_and_labels(options, error)``: the ``name`` and ``labels`` options of a ``create``,
  validated (``identity`` rules); a bad one raises ``error("--name: …")`` / ``error("--label: …")``.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from mutagen_actors.supervisor import identity


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def given(options: Mapping[str, Any], key: str) -> Optional[str]:
    value = options.get(key)
    if value is None or value == "":
        return None
    return str(value)


def flag_origin(flags: Any, field: str, side: str, option: str) -> str:
    if getattr(getattr(flags, side), field) is not None:
        return f"{flag(option)}-{side}"
    if getattr(flags.common, field) is not None:
        return flag(option)
    return "configuration file"


def name_and_labels(options: Mapping[str, Any], error: type[Exception]) -> tuple[str, dict]:
    name = options.get("name") or ""
    try:
        identity.validate_name(name)
    except ValueError as problem:
        raise error(f"--name: {problem}") from None
    try:
        labels = identity.parse_labels(list(options.get("labels") or ()))
    except ValueError as problem:
        raise error(f"--label: {problem}") from None
    return name, labels
