"""Enumerated settings of a synchronization session, with the words users type.

The values are the command-line and YAML spellings from Mutagen (see docs/), so
``Mode("two-way-safe")`` parses a flag and ``mode.value`` prints it.
"""

from __future__ import annotations

import enum


class _Choice(str, enum.Enum):
    @classmethod
    def parse(cls, text: str, what: str):
        """Parse user input; raise ValueError naming the setting and the accepted values."""
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(member.value for member in cls)
            raise ValueError(f"invalid {what} {text!r} (expected one of: {choices})") from None

    def __str__(self) -> str:
        return self.value


class Mode(_Choice):
    TWO_WAY_SAFE = "two-way-safe"
    TWO_WAY_RESOLVED = "two-way-resolved"
    ONE_WAY_SAFE = "one-way-safe"
    ONE_WAY_REPLICA = "one-way-replica"


class HashAlgorithm(_Choice):
    XXH128 = "xxh128"
    SHA1 = "sha1"
    SHA256 = "sha256"


class SymlinkMode(_Choice):
    PORTABLE = "portable"
    IGNORE = "ignore"
    POSIX_RAW = "posix-raw"


class PermissionsMode(_Choice):
    PORTABLE = "portable"
    MANUAL = "manual"


class IgnoreSyntax(_Choice):
    MUTAGEN = "mutagen"
    DOCKER = "docker"


class WatchMode(_Choice):
    PORTABLE = "portable"
    FORCE_POLL = "force-poll"
    NO_WATCH = "no-watch"


class ScanMode(_Choice):
    ACCELERATED = "accelerated"
    FULL = "full"


class StageMode(_Choice):
    DATA_DIRECTORY = "mutagen"
    NEIGHBORING = "neighboring"
    INTERNAL = "internal"


DEFAULT_FILE_MODE = 0o600
DEFAULT_DIRECTORY_MODE = 0o700
DEFAULT_WATCH_POLLING_INTERVAL = 10
# Names that belong to the tool itself: never scanned, never synchronized.
TEMPORARY_PREFIX = ".mutagen-temporary-"

# Compression of a remote endpoint's tunnel (negotiated with the agent; local endpoints have no
# tunnel). Mutagen's "deflate" and "zstandard" are not offered: asking for them is an error.
COMPRESSION_ALGORITHMS = ("none", "lz4")
DEFAULT_COMPRESSION = "lz4"
