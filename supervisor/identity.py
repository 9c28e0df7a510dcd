"""Session identifiers, names and labels (pure; reference §1.1 "create" flags and §9).

- Identifiers: ``<prefix>_<43 base62 characters>`` from 32 random bytes (the big-endian number
  in base 62, digits ``0-9a-zA-Z``, left-padded with ``0``), prefixes ``sync`` (synchronization),
  ``fwrd`` (forwarding), ``proj`` (project), ``pmtr`` (prompter). Legacy UUIDs are accepted by
  ``is_identifier``.
- Names: empty (no name), or a Unicode letter followed by letters, digits and ``-``; not a UUID
  (so a name can never be mistaken for an identifier) and not ``defaults`` (reserved by project
  files). Names need not be unique.
- Labels: ``key[=value]``; keys are Kubernetes qualified names (optional DNS-subdomain prefix and
  ``/``, then a name of at most 63 characters: alphanumerics, ``-``, ``_``, ``.``, beginning and
  ending with an alphanumeric); values are empty or follow the same name rule.

Every validator raises ValueError with a one-line message naming the bad input.
"""

from __future__ import annotations

import re
import secrets

SYNCHRONIZATION_PREFIX = "sync"
FORWARDING_PREFIX = "fwrd"
PROJECT_PREFIX = "proj"
PROMPTER_PREFIX = "pmtr"
PREFIXES = (SYNCHRONIZATION_PREFIX, FORWARDING_PREFIX, PROJECT_PREFIX, PROMPTER_PREFIX)

BASE62_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
RANDOM_BYTES = 32
ENCODED_LENGTH = 43  # ceil(256 / log2(62))
RESERVED_NAMES = ("defaults",)

_IDENTIFIER = re.compile(rf"(?:{'|'.join(PREFIXES)})_[0-9a-zA-Z]{{{ENCODED_LENGTH}}}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32}")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
MAXIMUM_LABEL_NAME_LENGTH = 63
MAXIMUM_LABEL_PREFIX_LENGTH = 253


def encode_base62(data: bytes, length: int = ENCODED_LENGTH) -> str:
    """``data`` as a big-endian number in base 62, left-padded with '0' to ``length``."""
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(BASE62_ALPHABET[remainder])
    return "".join(reversed(digits)).rjust(length, "0")


def new_identifier(prefix: str) -> str:
    """A new collision-resistant identifier such as ``sync_1xk…`` (43 characters after ``_``)."""
    if prefix not in PREFIXES:
        raise ValueError(f"invalid identifier prefix {prefix!r} (expected one of: {', '.join(PREFIXES)})")
    return f"{prefix}_{encode_base62(secrets.token_bytes(RANDOM_BYTES))}"


def is_uuid(text: str) -> bool:
    """True for a UUID in the canonical 8-4-4-4-12 form or as 32 hex digits."""
    return _UUID.fullmatch(text) is not None


def is_identifier(text: str, prefix: str | None = None) -> bool:
    """True if ``text`` is a session identifier (of ``prefix`` if given) or a legacy UUID."""
    if is_uuid(text):
        return True
    if _IDENTIFIER.fullmatch(text) is None:
        return False
    return prefix is None or text.startswith(prefix + "_")


def validate_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a valid session name ("" means unnamed and is valid)."""
    if name == "":
        return
    if not name[0].isalpha():
        raise ValueError(f"invalid session name {name!r}: it must start with a letter")
    for character in name:
        if not (character.isalpha() or character.isdecimal() or character == "-"):
            raise ValueError(f"invalid session name {name!r}: only letters, digits and '-' are allowed")
    if is_uuid(name):
        raise ValueError(f"invalid session name {name!r}: a name may not be a UUID")
    if name in RESERVED_NAMES:
        raise ValueError(f"invalid session name {name!r}: {name!r} is reserved")


def _label_name_problem(name: str) -> str | None:
    if not name:
        return "name part must not be empty"
    if len(name) > MAXIMUM_LABEL_NAME_LENGTH:
        return f"name part must be at most {MAXIMUM_LABEL_NAME_LENGTH} characters"
    if _LABEL_NAME.fullmatch(name) is None:
        return "name part must consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric"
    return None


def validate_label_key(key: str) -> None:
    """Raise ValueError unless ``key`` is a Kubernetes qualified name."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            raise ValueError(f"invalid label key {key!r}: prefix part must not be empty")
        if "/" in prefix:
            raise ValueError(f"invalid label key {key!r}: at most one '/' is allowed")
        if len(prefix) > MAXIMUM_LABEL_PREFIX_LENGTH or not all(_DNS_LABEL.fullmatch(p) for p in prefix.split(".")):
            raise ValueError(f"invalid label key {key!r}: prefix part must be a lowercase DNS subdomain")
    problem = _label_name_problem(name)
    if problem:
        raise ValueError(f"invalid label key {key!r}: {problem}")


def validate_label_value(value: str, key: str = "") -> None:
    """Raise ValueError unless ``value`` is a valid label value (may be empty)."""
    if value == "":
        return
    problem = _label_name_problem(value)
    if problem:
        problem = problem.replace("name part", "value")
        where = f" for label {key!r}" if key else ""
        raise ValueError(f"invalid label value {value!r}{where}: {problem}")


def parse_labels(values: list[str]) -> dict[str, str]:
    """Parse ``-l`` values: each is split on commas into ``key[=value]`` items; later keys win."""
    labels: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            key, _, label_value = item.partition("=")
            if key == "":
                raise ValueError(f"invalid label specification {item!r}: the key is empty")
            validate_label_key(key)
            validate_label_value(label_value, key)
            labels[key] = label_value
    return labels
