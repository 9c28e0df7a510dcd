"""``sync create`` flags -> a validated ``SyncCreate`` message (pure apart from reading the
configuration files, the current directory/home for local URLs and user/group look-ups).

``build_create(options)`` takes the command's options by their click parameter names (strings as
typed; ``None``/empty = not given) and returns the message the daemon gets. Everything a user can
get wrong is checked here, before the daemon is contacted, and reported as ``ArgumentError`` (a
ValueError) with one line naming the flag or file and what was expected:

- enumerated settings (``--mode``, ``--hash``, ``--symlink-mode``, ``--ignore-syntax``,
  ``--permissions-mode``, ``--watch-mode*``, ``--scan-mode*``, ``--stage-mode*``,
  ``--probe-mode*``, ``--compression*``), numbers (``--watch-polling-interval*``,
  ``--max-entry-count``), human sizes (``--max-staging-file-size``), octal modes, owner/group
  specifications (looked up when that side is local), name and labels, ignore patterns (in the
  effective syntax), ``--ignore-vcs`` with ``--no-ignore-vcs``;
- URLs (unparseable, the same location twice, one local root inside the other);
- configuration files (through ``supervisor.configuration``: the file and the key are named);
- cross-setting rules on the merged result (a default file mode with execute bits in portable
  permissions mode names the flag that set it).

Precedence, lowest first: defaults < global file (``~/.mutagen-actors.yml`` unless
``no_global_configuration``) < each ``-c`` file in order < flags; ignore lists are concatenated;
``-l``, ``-i`` and ``-c`` values are split on commas (as Mutagen's string-slice flags).
Unset settings travel as ""/0 ("default", resolved when the session runs).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping, Optional

from mutagen_actors.actors.sync import permissions
from mutagen_actors.actors.sync.ignore import InvalidIgnorePattern, validate_pattern
from mutagen_actors.actors.sync.settings import (
    HashAlgorithm,
    IgnoreSyntax,
    Mode,
    PermissionsMode,
    ScanMode,
    StageMode,
    SymlinkMode,
    WatchMode,
)
from mutagen_actors.supervisor import configuration as config
from mutagen_actors.supervisor import urls
from mutagen_actors.wire.messages import sync as messages

from .flag_values import flag, flag_origin, given, name_and_labels
from .selecting import ArgumentError, selection  # noqa: F401  (re-exported: one error type)

CONFLICTING_VCS = "conflicting VCS ignore behavior specified"
MAXIMUM_UINT32 = 2**32 - 1
MAXIMUM_UINT64 = 2**64 - 1
SIDES = ("alpha", "beta")


def _choice(values: tuple[str, ...], what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in values:
            raise ValueError(f"invalid {what} {text!r} (expected one of: {', '.join(values)})")
        return text

    return parse


def _enum(kind, what: str) -> Callable[[str], Any]:
    return lambda text: kind.parse(text, what)


def _unsigned(what: str, maximum: int) -> Callable[[str], Optional[int]]:
    def parse(text: str) -> Optional[int]:
        cleaned = text.strip()
        if not cleaned.isascii() or not cleaned.isdigit() or int(cleaned) > maximum:
            raise ValueError(f"invalid {what} {text!r} (expected a whole number from 0 to {maximum})")
        return int(cleaned) or None

    return parse


def _size(text: str) -> Optional[int]:
    return config.parse_size(text) or None


def _mode(what: str) -> Callable[[str], Optional[int]]:
    def parse(text: str) -> Optional[int]:
        if text.strip() in ("0", "00", "000", "0000"):
            return None  # 0 means "default", as in Mutagen
        return permissions.parse_mode(text, what)

    return parse


def _ownership(what: str) -> Callable[[str], Optional[str]]:
    def parse(text: str) -> Optional[str]:
        if text == "":
            return None
        if text.startswith("id:"):
            number = text[3:]
            if not number.isascii() or not number.isdigit() or int(number) > permissions.MAXIMUM_ID:
                raise ValueError(f"invalid {what} {text!r}: 'id:' must be followed by a number "
                                 f"between 0 and {permissions.MAXIMUM_ID}")
        elif ":" in text or "/" in text or any(c.isspace() for c in text):
            raise ValueError(f"invalid {what} {text!r} (expected a name or id:N)")
        return text

    return parse


# Settings that may be given session-wide and per side: option base name -> (field, parser).
ENDPOINT_OPTIONS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "watch_mode": ("watch_mode", _enum(WatchMode, "watch mode")),
    "watch_polling_interval": ("watch_polling_interval", _unsigned("watch polling interval", MAXIMUM_UINT32)),
    "scan_mode": ("scan_mode", _enum(ScanMode, "scan mode")),
    "stage_mode": ("stage_mode", _enum(StageMode, "stage mode")),
    "probe_mode": ("probe_mode", _choice(config.PROBE_MODES, "probe mode")),
    "default_file_mode": ("default_file_mode", _mode("default file mode")),
    "default_directory_mode": ("default_directory_mode", _mode("default directory mode")),
    "default_owner": ("default_owner", _ownership("default owner")),
    "default_group": ("default_group", _ownership("default group")),
    "compression": ("compression", _choice(config.COMPRESSION_ALGORITHMS, "compression algorithm")),
}
# Session-wide only: option name -> (field, parser, where: "session" or "common").
SESSION_OPTIONS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "mode": ("mode", _enum(Mode, "synchronization mode"), "session"),
    "hash": ("hash", _enum(HashAlgorithm, "hash algorithm"), "session"),
    "symlink_mode": ("symlink_mode", _enum(SymlinkMode, "symbolic link mode"), "session"),
    "ignore_syntax": ("ignore_syntax", _enum(IgnoreSyntax, "ignore syntax"), "session"),
    "permissions_mode": ("permissions_mode", _enum(PermissionsMode, "permissions mode"), "session"),
    "max_entry_count": ("max_entry_count", _unsigned("maximum entry count", MAXIMUM_UINT64), "common"),
    "max_staging_file_size": ("max_staging_file_size", _size, "common"),
}


def _parse_option(options: Mapping[str, Any], key: str, parser: Callable[[str], Any]) -> Any:
    text = given(options, key)
    if text is None:
        return None
    try:
        return parser(text)
    except ValueError as error:
        raise ArgumentError(f"{flag(key)}: {error}") from None


def flags_layer(options: Mapping[str, Any]) -> config.SyncConfiguration:
    """The configuration layer given by the flags (each value parsed; the flag named on error)."""
    session: dict[str, Any] = {}
    common: dict[str, Any] = {}
    for key, (field, parser, where) in SESSION_OPTIONS.items():
        value = _parse_option(options, key, parser)
        if value is not None:
            (session if where == "session" else common)[field] = value
    sides: dict[str, dict[str, Any]] = {"alpha": {}, "beta": {}}
    for base, (field, parser) in ENDPOINT_OPTIONS.items():
        value = _parse_option(options, base, parser)
        if value is not None:
            common[field] = value
        for side in SIDES:
            value = _parse_option(options, f"{base}_{side}", parser)
            if value is not None:
                sides[side][field] = value
    if options.get("ignore_vcs") and options.get("no_ignore_vcs"):
        raise ArgumentError(CONFLICTING_VCS)
    if options.get("ignore_vcs"):
        session["ignore_vcs"] = True
    elif options.get("no_ignore_vcs"):
        session["ignore_vcs"] = False
    ignores = config.split_flag_values(tuple(options.get("ignores") or ()))
    return config.SyncConfiguration(
        **session,
        ignores=ignores,
        common=config.EndpointConfiguration(**common),
        alpha=config.EndpointConfiguration(**sides["alpha"]),
        beta=config.EndpointConfiguration(**sides["beta"]),
    )


def _origin(flags: config.SyncConfiguration, field: str, side: str) -> str:
    """Which flag (or "a configuration file") set an endpoint setting in force on ``side``."""
    return flag_origin(flags, field, side, field)


def _check_merged(merged: config.SyncConfiguration, flags: config.SyncConfiguration,
                  remote: Mapping[str, bool]) -> None:
    resolved = config.merge_sync(config.SYNC_DEFAULTS, merged)
    for pattern in flags.ignores:
        try:
            validate_pattern(pattern, resolved.ignore_syntax)
        except InvalidIgnorePattern as error:
            raise ArgumentError(f"--ignore: {error} (ignore syntax: {resolved.ignore_syntax.value})") from None
    for side in SIDES:
        endpoint = resolved.endpoint(side)
        try:
            permissions.validate_default_file_mode(endpoint.default_file_mode, resolved.permissions_mode)
        except ValueError as error:
            hint = ("; use --permissions-mode manual to set execute bits"
                    if resolved.permissions_mode is PermissionsMode.PORTABLE else "")
            raise ArgumentError(f"{_origin(flags, 'default_file_mode', side)}: {error}{hint}") from None
        if remote[side]:
            continue  # owners and groups are resolved on the endpoint's machine
        for field, lookup in (("default_owner", permissions.parse_owner),
                              ("default_group", permissions.parse_group)):
            value = getattr(endpoint, field)
            if value is not None:
                try:
                    lookup(value)
                except ValueError as error:
                    raise ArgumentError(f"{_origin(flags, field, side)}: {error}") from None
    try:
        config.validate_sync(merged)
    except ValueError as error:
        raise ArgumentError(str(error)) from None


def merge_layers(flags: config.SyncConfiguration, files: tuple[str, ...], *, use_global: bool,
                 global_path: Optional[str] = None) -> config.SyncConfiguration:
    """global (if used; missing is fine) < each ``-c`` file (missing is an error) < flags."""
    layers = []
    try:
        if use_global:
            path = global_path or config.global_configuration_path()
            layers.append(config.load_configuration_file(path, required=False).sync)
        layers.extend(config.load_configuration_file(path).sync for path in files)
    except ValueError as error:
        raise ArgumentError(str(error)) from None
    layers.append(flags)
    return config.merge_sync(*layers)


def _wire_endpoint(endpoint: config.EndpointConfiguration) -> messages.EndpointConfiguration:
    values = {}
    for field in dataclasses.fields(config.EndpointConfiguration):
        value = getattr(endpoint, field.name)
        if value is None:
            continue
        values[field.name] = value.value if hasattr(value, "value") else value
    return messages.EndpointConfiguration(**values)


def to_wire(merged: config.SyncConfiguration) -> messages.SyncConfiguration:
    """A merged layer (None = unset) as the wire form (""/0 = default)."""
    def word(value) -> str:
        return "" if value is None else value.value

    return messages.SyncConfiguration(
        mode=word(merged.mode),
        hash=word(merged.hash),
        symlink_mode=word(merged.symlink_mode),
        ignore_syntax=word(merged.ignore_syntax),
        ignores=list(merged.ignores),
        ignore_vcs=merged.ignore_vcs,
        permissions_mode=word(merged.permissions_mode),
        endpoint=_wire_endpoint(merged.common),
        alpha=_wire_endpoint(merged.alpha),
        beta=_wire_endpoint(merged.beta),
    )


def _wire_url(url: urls.Url) -> messages.EndpointUrl:
    return messages.EndpointUrl(protocol=url.protocol, user=url.user, host=url.host,
                                port=url.port, path=url.path, environment=dict(url.environment))


def _inside(inner: str, outer: str) -> bool:
    return os.path.commonpath([inner, outer]) == outer and inner != outer


def check_roots(alpha: urls.Url, beta: urls.Url) -> None:
    """Refuse the same location twice, and one local root inside the other."""
    same_place = (alpha.protocol, alpha.user, alpha.host, alpha.port) == \
        (beta.protocol, beta.user, beta.host, beta.port)
    if not same_place:
        return
    if alpha.protocol != urls.LOCAL:
        if alpha.path == beta.path:
            raise ArgumentError(f"alpha and beta are the same location ({urls.format_url(alpha)})")
        return
    real_alpha, real_beta = os.path.realpath(alpha.path), os.path.realpath(beta.path)
    if alpha.path == beta.path or real_alpha == real_beta:
        raise ArgumentError(f"alpha and beta are the same directory ({alpha.path})")
    if _inside(real_beta, real_alpha):
        raise ArgumentError(f"beta ({beta.path}) is inside alpha ({alpha.path}): "
                            "one synchronization root may not contain the other")
    if _inside(real_alpha, real_beta):
        raise ArgumentError(f"alpha ({alpha.path}) is inside beta ({beta.path}): "
                            "one synchronization root may not contain the other")


def parse_endpoints(alpha: str, beta: str, environment: Optional[Mapping[str, str]] = None
                    ) -> tuple[urls.Url, urls.Url]:
    parsed = []
    for side, text in (("alpha", alpha), ("beta", beta)):
        try:
            parsed.append(urls.parse_url(text, side, environment))
        except ValueError as error:
            raise ArgumentError(f"{side}: {error}") from None
    check_roots(parsed[0], parsed[1])
    return parsed[0], parsed[1]


def build_create(options: Mapping[str, Any], *, environment: Optional[Mapping[str, str]] = None,
                 global_path: Optional[str] = None) -> messages.SyncCreate:
    """Validate ``sync create``'s options and build the request (see the module docstring).

    ``options`` keys: ``alpha``, ``beta``, ``name``, ``labels`` (list), ``paused``,
    ``ignores`` (list), ``ignore_vcs``, ``no_ignore_vcs``, ``configuration_files`` (list),
    ``no_global_configuration``, and each key of ``SESSION_OPTIONS`` / ``ENDPOINT_OPTIONS``
    (plus ``_alpha``/``_beta`` variants of the latter). Missing keys mean "not given".
    """
    name, labels = name_and_labels(options, ArgumentError)
    alpha, beta = parse_endpoints(options.get("alpha") or "", options.get("beta") or "", environment)
    flags = flags_layer(options)
    files = config.split_flag_values(tuple(options.get("configuration_files") or ()))
    merged = merge_layers(flags, files, use_global=not options.get("no_global_configuration"),
                          global_path=global_path)
    _check_merged(merged, flags, {"alpha": alpha.is_remote, "beta": beta.is_remote})
    return messages.SyncCreate(
        alpha=_wire_url(alpha),
        beta=_wire_url(beta),
        name=name,
        labels=labels,
        paused=bool(options.get("paused")),
        configuration=to_wire(merged),
    )
