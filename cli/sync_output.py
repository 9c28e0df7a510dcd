"""How the CLI shows synchronization sessions (pure: states in, text or JSON-ready dicts out).

- ``list_lines(states, long)``: Mutagen's ``sync list`` layout. Each session is preceded by a
  delimiter line of 80 ``-`` and one more follows the last; with no sessions the text
  ``No synchronization sessions found`` sits between two delimiters. Short form: counts of
  conflicts and problems; ``--long``: labels, configuration (``Default (<resolved>)`` for
  unset settings), every conflict change ``(alpha) path (Old -> New)`` and problem, at most
  ``HUMAN_CAP`` (10) of each, then ``...+N more...``.
- ``session_json(state)``: one JSON object with Mutagen's camelCase field names; lists are not
  capped. Unset configuration values are omitted (as Mutagen's ``omitempty``). Per endpoint,
  ``stagingProgress`` (while staging; Mutagen's six fields plus ``totalExpectedSize`` and,
  once there is a rate, ``secondsRemaining``) and ``lastStagingProgress`` (the final numbers of
  the last completed pass, when there was one).
- ``monitor_header_lines(state, long)`` and ``monitor_line(state)``: what ``sync monitor``
  prints once, and the status line it rewrites.

Nothing here raises on unusual values (unknown status or setting words are shown as they are).
"""

from __future__ import annotations

import os
from typing import Optional

from mutagen_actors.actors.sync.model import Entry, Kind
from mutagen_actors.actors.sync import settings
from mutagen_actors.supervisor import urls
from mutagen_actors.wire.messages.sync import (
    STATUS_DESCRIPTIONS,
    EndpointConfiguration,
    EndpointState,
    StagingProgress,
    SyncConfiguration,
    SyncSessionState,
)

from .output import compact_duration
from .session_output import (  # noqa: F401  (DELIMITER_LINE, EMPTY_LABEL_VALUE: re-exported)
    DELIMITER_LINE,
    EMPTY_LABEL_VALUE,
    delimited,
    format_url,
    heading_lines,
    humanize_bytes,
    rfc3339,
    set_fields,
    status_text,
    url_json,
)

NO_SESSIONS = "No synchronization sessions found"
HUMAN_CAP = 10
MAX_UINT64 = 2**64 - 1
MAX_UINT64_DESCRIPTION = "2⁶⁴−1"
STAGING_STATUSES = ("staging-alpha", "staging-beta")

# Words users type -> what ``list --long`` shows; the first value is the default.
DESCRIPTIONS = {
    "mode": {"two-way-safe": "Two Way Safe", "two-way-resolved": "Two Way Resolved",
             "one-way-safe": "One Way Safe", "one-way-replica": "One Way Replica"},
    "hash": {"xxh128": "XXH128", "sha1": "SHA-1", "sha256": "SHA-256"},
    "symlink_mode": {"portable": "Portable", "ignore": "Ignore", "posix-raw": "POSIX Raw"},
    "ignore_syntax": {"mutagen": "Mutagen", "docker": "Docker"},
    "permissions_mode": {"portable": "Portable", "manual": "Manual"},
    "watch_mode": {"portable": "Portable", "force-poll": "Force Poll", "no-watch": "No Watch"},
    "probe_mode": {"probe": "Probe", "assume": "Assume"},
    "scan_mode": {"accelerated": "Accelerated", "full": "Full"},
    "stage_mode": {"mutagen": "Data Directory", "neighboring": "Neighboring", "internal": "Internal"},
    "compression": {"lz4": "LZ4", "none": "None"},
}
DEFAULTS = {
    "mode": settings.Mode.TWO_WAY_SAFE.value,
    "hash": settings.HashAlgorithm.XXH128.value,
    "symlink_mode": settings.SymlinkMode.PORTABLE.value,
    "ignore_syntax": settings.IgnoreSyntax.MUTAGEN.value,
    "permissions_mode": settings.PermissionsMode.PORTABLE.value,
    "watch_mode": settings.WatchMode.PORTABLE.value,
    "probe_mode": "probe",
    "scan_mode": settings.ScanMode.ACCELERATED.value,
    "stage_mode": settings.StageMode.DATA_DIRECTORY.value,
    "compression": "lz4",
}
ENDPOINT_FIELDS = tuple(EndpointConfiguration.__struct_fields__)


# ------------------------------------------------------------------------------ small formats


def plural(count: int, singular: str, plural_form: str) -> str:
    return f"1 {singular}" if count == 1 else f"{count} {plural_form}"


def format_path(path: str) -> str:
    return path if path else "<root>"


def format_entry(entry: Optional[Entry]) -> str:
    if entry is None:
        return "<non-existent>"
    if entry.kind == Kind.DIRECTORY:
        return "Directory"
    if entry.kind == Kind.FILE:
        prefix = "Executable File" if entry.executable else "File"
        return f"{prefix} ({entry.digest.hex()})"
    if entry.kind == Kind.SYMLINK:
        return f"Symbolic Link ({entry.target})"
    if entry.kind == Kind.UNTRACKED:
        return "Untracked content"
    if entry.kind == Kind.PROBLEMATIC:
        return f"Problematic content ({entry.problem})"
    if entry.kind == Kind.PHANTOM:
        return "Phantom Directory"
    return "<unknown>"


def describe(setting: str, value: str) -> str:
    """``Default (Two Way Safe)`` for "" and ``Two Way Safe`` for a chosen value."""
    words = DESCRIPTIONS[setting]
    if not value:
        default = DEFAULTS[setting]
        return f"Default ({words.get(default, default)})"
    return words.get(value, value)


def status_description(state: SyncSessionState) -> str:
    return status_text(state, STATUS_DESCRIPTIONS)


def effective_endpoint(configuration: SyncConfiguration, side: str) -> EndpointConfiguration:
    """The session-wide endpoint settings overridden by ``side``'s non-default values."""
    specific = getattr(configuration, side)
    values = {}
    for field in ENDPOINT_FIELDS:
        value = getattr(specific, field)
        values[field] = value if value else getattr(configuration.endpoint, field)
    return EndpointConfiguration(**values)


def _capped(items: list, cap: Optional[int]) -> tuple[list, int]:
    if cap is None or len(items) <= cap:
        return list(items), 0
    return list(items[:cap]), len(items) - cap


def _sorted_problems(problems) -> list:
    return sorted(problems, key=lambda problem: problem.path)


# ------------------------------------------------------------------------------- human list


def _configuration_lines(configuration: SyncConfiguration) -> list[str]:
    endpoint = configuration.endpoint
    lines = ["Configuration:",
             f"\tSynchronization mode: {describe('mode', configuration.mode)}",
             f"\tHashing algorithm: {describe('hash', configuration.hash)}"]
    if endpoint.max_entry_count:
        lines.append(f"\tMaximum allowed entry count: {endpoint.max_entry_count}")
    else:
        lines.append(f"\tMaximum allowed entry count: Default ({MAX_UINT64_DESCRIPTION})")
    if endpoint.max_staging_file_size:
        size = endpoint.max_staging_file_size
        lines.append(f"\tMaximum staging file size: {size} ({humanize_bytes(size)})")
    else:
        lines.append(f"\tMaximum staging file size: Default ({humanize_bytes(MAX_UINT64)})")
    lines.append(f"\tSymbolic link mode: {describe('symlink_mode', configuration.symlink_mode)}")
    lines.append(f"\tIgnore syntax: {describe('ignore_syntax', configuration.ignore_syntax)}")
    if configuration.ignores:
        lines.append("\tIgnores:")
        lines.extend(f"\t\t{pattern}" for pattern in configuration.ignores)
    else:
        lines.append("\tIgnores: None")
    if configuration.ignore_vcs is None:
        vcs = "Default (Propagate)"
    else:
        vcs = "Ignore" if configuration.ignore_vcs else "Propagate"
    lines.append(f"\tIgnore VCS mode: {vcs}")
    lines.append(f"\tPermissions mode: {describe('permissions_mode', configuration.permissions_mode)}")
    return lines


def _endpoint_configuration_lines(configuration: EndpointConfiguration, remote: bool) -> list[str]:
    lines = ["\tConfiguration:",
             f"\t\tWatch mode: {describe('watch_mode', configuration.watch_mode)}"]
    if configuration.watch_mode != settings.WatchMode.NO_WATCH.value:
        if configuration.watch_polling_interval:
            interval = plural(configuration.watch_polling_interval, "second", "seconds")
        else:
            interval = f"Default ({settings.DEFAULT_WATCH_POLLING_INTERVAL} seconds)"
        lines.append(f"\t\tWatch polling interval: {interval}")
    lines.append(f"\t\tProbe mode: {describe('probe_mode', getattr(configuration, 'probe_mode', ''))}")
    lines.append(f"\t\tScan mode: {describe('scan_mode', configuration.scan_mode)}")
    lines.append(f"\t\tStage mode: {describe('stage_mode', configuration.stage_mode)}")
    if configuration.default_file_mode:
        lines.append(f"\t\tFile mode: {configuration.default_file_mode:04o}")
    else:
        lines.append(f"\t\tFile mode: Default ({settings.DEFAULT_FILE_MODE:04o})")
    if configuration.default_directory_mode:
        lines.append(f"\t\tDirectory mode: {configuration.default_directory_mode:04o}")
    else:
        lines.append(f"\t\tDirectory mode: Default ({settings.DEFAULT_DIRECTORY_MODE:04o})")
    lines.append(f"\t\tDefault file/directory owner: {configuration.default_owner or 'Default'}")
    lines.append(f"\t\tDefault file/directory group: {configuration.default_group or 'Default'}")
    if remote:
        lines.append(f"\t\tCompression: {describe('compression', configuration.compression)}")
    return lines


def _problem_lines(title: str, problems, long: bool) -> list[str]:
    if not problems:
        return []
    if not long:
        return [f"\t{title}: {len(problems)}"]
    shown, excluded = _capped(_sorted_problems(problems), HUMAN_CAP)
    lines = [f"\t{title}:"]
    lines.extend(f"\t\t{format_path(p.path)}: {p.error}" for p in shown)
    if excluded:
        lines.append(f"\t\t...+{excluded} more...")
    return lines


def _endpoint_lines(title: str, state: EndpointState, configuration: EndpointConfiguration,
                    mode: str) -> list[str]:
    long = mode in ("long", "monitor-long")
    lines = [f"{title}:", f"\tURL: {format_url(state.url)}"]
    if long:
        lines.extend(_endpoint_configuration_lines(configuration, state.url.protocol != urls.LOCAL))
    if mode.startswith("monitor"):
        return lines
    lines.append(f"\tConnected: {'Yes' if state.connected else 'No'}")
    if state.scanned:
        lines.append("\tSynchronizable contents:")
        lines.append("\t\t" + plural(state.directories, "directory", "directories"))
        lines.append("\t\t" + plural(state.files, "file", "files")
                     + f" ({humanize_bytes(state.total_file_size)})")
        lines.append("\t\t" + plural(state.symbolic_links, "symbolic link", "symbolic links"))
    if state.watch_state:
        lines.append(f"\tWatch status: {state.watch_state}")
    lines.extend(_problem_lines("Scan problems", state.scan_problems, long))
    lines.extend(_problem_lines("Transition problems", state.transition_problems, long))
    return lines


def _conflict_lines(conflicts, long: bool) -> list[str]:
    if not conflicts:
        return []
    if not long:
        return [f"Conflicts: {len(conflicts)}"]
    shown, excluded = _capped(sorted(conflicts, key=lambda c: c.root), HUMAN_CAP)
    lines = ["Conflicts:"]
    for index, conflict in enumerate(shown):
        for change in conflict.alpha_changes:
            lines.append(f"\t(alpha) {format_path(change.path)} "
                         f"({format_entry(change.old)} -> {format_entry(change.new)})")
        for change in conflict.beta_changes:
            lines.append(f"\t(beta)  {format_path(change.path)} "
                         f"({format_entry(change.old)} -> {format_entry(change.new)})")
        if index < len(shown) - 1 or excluded:
            lines.append("")
    if excluded:
        lines.append(f"\t...+{excluded} more...")
    return lines


def _staging_target(state: SyncSessionState) -> Optional[StagingProgress]:
    if state.status == "staging-alpha":
        return state.alpha.staging_progress
    if state.status == "staging-beta":
        return state.beta.staging_progress
    return None


def staging_fraction(progress: StagingProgress) -> float:
    """Share of the pass done, in [0, 1]: by bytes, or by files when no bytes are expected."""
    if progress.total_expected_size > 0:
        fraction = progress.total_received_size / progress.total_expected_size
    elif progress.expected_files > 0:
        fraction = progress.received_files / progress.expected_files
    else:
        return 0.0
    return min(1.0, max(0.0, fraction))


def staging_percent(progress: StagingProgress) -> str:
    """``42%``, rounded down: 100% only once everything arrived."""
    return f"{int(100 * staging_fraction(progress))}%"


def format_eta(seconds: float) -> str:
    """``ETA 1m05s``-style text, or "" when there is no estimate."""
    if seconds < 0:
        return ""
    return "ETA " + compact_duration(int(seconds + 0.5))


def session_lines(state: SyncSessionState, mode: str = "list") -> list[str]:
    """One session's block. ``mode``: ``list``, ``long``, ``monitor`` or ``monitor-long``."""
    long = mode in ("long", "monitor-long")
    lines = heading_lines(state, labels=long)
    if long:
        lines.extend(_configuration_lines(state.configuration))
    for title, side in (("Alpha", "alpha"), ("Beta", "beta")):
        lines.extend(_endpoint_lines(title, getattr(state, side),
                                     effective_endpoint(state.configuration, side), mode))
    if mode.startswith("monitor"):
        return lines
    lines.extend(_conflict_lines(state.conflicts, long))
    if state.last_error:
        lines.append(f"Last error: {state.last_error}")
    lines.append(f"Status: {status_description(state)}")
    progress = None if state.paused else _staging_target(state)
    if progress is not None:
        total = f"/{humanize_bytes(progress.total_expected_size)}" if progress.total_expected_size else ""
        line = (f"Staging progress: {progress.received_files}/{progress.expected_files} - "
                f"{humanize_bytes(progress.total_received_size)}{total} - "
                f"{staging_percent(progress)}")
        eta = format_eta(progress.seconds_remaining)
        if eta:
            line += f" - {eta}"
        lines.append(line)
        if progress.path:
            lines.append(f"Current file: {progress.path} ({humanize_bytes(progress.received_size)}/"
                         f"{humanize_bytes(progress.expected_size)})")
    return lines


def list_lines(states: list[SyncSessionState], long: bool = False) -> list[str]:
    return delimited((session_lines(state, "long" if long else "list") for state in states),
                     NO_SESSIONS)


# ---------------------------------------------------------------------------------- monitor


def monitor_header_lines(state: SyncSessionState, long: bool = False) -> list[str]:
    return session_lines(state, "monitor-long" if long else "monitor")


def monitor_line(state: SyncSessionState) -> str:
    """``Status: [C] [!] [X] <status>`` plus staging progress while staging."""
    if state.paused:
        return "Status: [Paused]"
    flags = ""
    if state.conflicts:
        flags += "[C] "
    if any((state.alpha.scan_problems, state.alpha.transition_problems,
            state.beta.scan_problems, state.beta.transition_problems)):
        flags += "[!] "
    if state.last_error:
        flags += "[X] "
    text = "Status: " + flags + STATUS_DESCRIPTIONS.get(state.status, state.status)
    progress = _staging_target(state)
    if progress is not None:
        arrow = "[←] " if state.status == "staging-alpha" else "[→] "
        total = f"/{humanize_bytes(progress.total_expected_size)}" if progress.total_expected_size else ""
        text += (f" {arrow}[{progress.received_files}/{progress.expected_files} - "
                 f"{humanize_bytes(progress.total_received_size)}{total} - "
                 f"{staging_percent(progress)}]")
        if progress.path:
            text += (f" {os.path.basename(progress.path)} ({humanize_bytes(progress.received_size)}/"
                     f"{humanize_bytes(progress.expected_size)})")
        eta = format_eta(progress.seconds_remaining)
        if eta:
            text += f" {eta}"
    return text


# ------------------------------------------------------------------------------------- JSON


def entry_json(entry: Optional[Entry]) -> Optional[dict]:
    if entry is None:
        return None
    data: dict = {"kind": {Kind.DIRECTORY: "directory", Kind.FILE: "file", Kind.SYMLINK: "symlink",
                           Kind.UNTRACKED: "untracked", Kind.PROBLEMATIC: "problematic",
                           Kind.PHANTOM: "phantom-directory"}.get(entry.kind, str(int(entry.kind)))}
    if entry.kind == Kind.FILE:
        data["digest"] = entry.digest.hex()
        data["executable"] = entry.executable
    elif entry.kind == Kind.SYMLINK:
        data["target"] = entry.target
    elif entry.kind == Kind.PROBLEMATIC:
        data["problem"] = entry.problem
    return data


def _changes_json(changes) -> list[dict]:
    return [{"path": c.path, "old": entry_json(c.old), "new": entry_json(c.new)} for c in changes]


def _problems_json(problems) -> list[dict]:
    return [{"path": p.path, "error": p.error} for p in _sorted_problems(problems)]


def _staging_json(progress: Optional[StagingProgress]) -> Optional[dict]:
    if progress is None:
        return None
    data = {"path": progress.path, "receivedSize": progress.received_size,
            "expectedSize": progress.expected_size, "receivedFiles": progress.received_files,
            "expectedFiles": progress.expected_files,
            "totalReceivedSize": progress.total_received_size,
            "totalExpectedSize": progress.total_expected_size}
    if progress.seconds_remaining >= 0:
        data["secondsRemaining"] = progress.seconds_remaining
    return data


def _endpoint_configuration_json(configuration: EndpointConfiguration) -> dict:
    data = set_fields(configuration, {
        "maxEntryCount": "max_entry_count", "maxStagingFileSize": "max_staging_file_size",
        "probeMode": "probe_mode", "scanMode": "scan_mode", "stageMode": "stage_mode"})
    watch = set_fields(configuration, {"mode": "watch_mode",
                                       "pollingInterval": "watch_polling_interval"})
    if watch:
        data["watch"] = watch
    permissions = set_fields(configuration, {
        "defaultFileMode": "default_file_mode", "defaultDirectoryMode": "default_directory_mode",
        "defaultOwner": "default_owner", "defaultGroup": "default_group"})
    if permissions:
        data["permissions"] = permissions
    if configuration.compression:
        data["compression"] = {"algorithm": configuration.compression}
    return data


def _endpoint_json(state: EndpointState, configuration: EndpointConfiguration) -> dict:
    url = state.url
    data: dict = {"url": urls.format_url(urls.Url(url.protocol, url.user, url.host, url.port, url.path)),
                  **url_json(url, "path")}
    data.update(_endpoint_configuration_json(configuration))
    data.update({
        "connected": state.connected,
        "scanned": state.scanned,
        "directories": state.directories,
        "files": state.files,
        "symbolicLinks": state.symbolic_links,
        "totalFileSize": state.total_file_size,
        "scanProblems": _problems_json(state.scan_problems),
        "transitionProblems": _problems_json(state.transition_problems),
        "stagingProgress": _staging_json(state.staging_progress),
    })
    if state.watch_state:
        data["watchState"] = state.watch_state
    if state.last_staging is not None:
        data["lastStagingProgress"] = _staging_json(state.last_staging)
    return data


def session_json(state: SyncSessionState) -> dict:
    """One session as Mutagen's JSON model (camelCase; lists uncapped)."""
    configuration = state.configuration
    data: dict = {"identifier": state.identifier, "version": 1,
                  "creationTime": rfc3339(state.created)}
    for key, value in (("mode", configuration.mode), ("hash", configuration.hash)):
        if value:
            data[key] = value
    data.update({k: v for k, v in _endpoint_configuration_json(configuration.endpoint).items()
                 if k in ("maxEntryCount", "maxStagingFileSize", "probeMode", "scanMode",
                          "stageMode", "watch", "permissions", "compression")})
    ignore: dict = {}
    if configuration.ignore_syntax:
        ignore["syntax"] = configuration.ignore_syntax
    if configuration.ignores:
        ignore["paths"] = list(configuration.ignores)
    if configuration.ignore_vcs is not None:
        ignore["vcs"] = configuration.ignore_vcs
    if ignore:
        data["ignore"] = ignore
    if configuration.symlink_mode:
        data["symlink"] = {"mode": configuration.symlink_mode}
    if configuration.permissions_mode:
        data.setdefault("permissions", {})
        data["permissions"] = {"mode": configuration.permissions_mode, **data["permissions"]}
    data.update({
        "name": state.name,
        "labels": dict(state.labels),
        "paused": state.paused,
        "status": state.status,
        "successfulCycles": state.successful_cycles,
        "lastError": state.last_error,
        "conflicts": [{"root": c.root, "alphaChanges": _changes_json(c.alpha_changes),
                       "betaChanges": _changes_json(c.beta_changes)}
                      for c in sorted(state.conflicts, key=lambda c: c.root)],
        "alpha": _endpoint_json(state.alpha, effective_endpoint(configuration, "alpha")),
        "beta": _endpoint_json(state.beta, effective_endpoint(configuration, "beta")),
    })
    return data


def list_json(states: list[SyncSessionState]) -> list[dict]:
    return [session_json(state) for state in states]
