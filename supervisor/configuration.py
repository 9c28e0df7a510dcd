"""Session configuration: YAML files, merge precedence, per-side overrides (reference §1.1, §13).

Sources, lowest precedence first: built-in defaults, the global file (``~/.mutagen-actors.yml``,
skipped with ``--no-global-configuration``; a missing file is fine), each ``-c`` file in order (a
missing one is an error), then command-line flags. A higher layer overrides a setting only when
it sets it (``None`` means "not set"; a zero number or mode counts as not set, as in Mutagen);
ignore lists are concatenated, lower layers first. Endpoint-capable settings can be given per
side (``configurationAlpha``/``configurationBeta`` in YAML, ``--…-alpha``/``--…-beta`` flags);
a side's value wins over the session-wide one on that side only.

File format (the global file and ``-c`` files)::

    sync:
      defaults:
        mode, hash, maxEntryCount, maxStagingFileSize ("100 MB", "1 GiB" or bytes), probeMode,
        scanMode, stageMode,
        ignore: {syntax, paths: [...], vcs: bool},
        symlink: {mode}, watch: {mode, pollingInterval},
        permissions: {mode, defaultFileMode, defaultDirectoryMode, defaultOwner, defaultGroup},
        compression: {algorithm},
        configurationAlpha: {<endpoint-capable keys>}, configurationBeta: {...}
    forward:
      defaults:
        socket: {overwriteMode, owner, group, permissionMode},
        configurationSource: {socket: {...}}, configurationDestination: {socket: {...}}

Modes are octal whether written ``0644``, ``644`` or ``"0644"`` (YAML would read ``644`` as
decimal and ``0644`` as octal; the text as written is used instead). Unknown keys, wrong types
and bad values raise ValueError naming the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import yaml

from ..actors.sync.ignore import validate_pattern
from ..actors.sync.permissions import parse_mode, validate_default_directory_mode, validate_default_file_mode
from ..actors.sync.settings import (  # noqa: F401 - COMPRESSION_ALGORITHMS: config.* for the CLI
    COMPRESSION_ALGORITHMS,
    DEFAULT_DIRECTORY_MODE,
    DEFAULT_FILE_MODE,
    DEFAULT_WATCH_POLLING_INTERVAL,
    HashAlgorithm,
    IgnoreSyntax,
    Mode,
    PermissionsMode,
    ScanMode,
    StageMode,
    SymlinkMode,
    WatchMode,
)

GLOBAL_CONFIGURATION_NAME = ".mutagen-actors.yml"
PROBE_MODES = ("probe", "assume")
SOCKET_OVERWRITE_MODES = ("leave", "overwrite")
MAXIMUM_UINT64 = 2**64 - 1
MAXIMUM_UINT32 = 2**32 - 1


# ---------------------------------------------------------------------------------------------
# Value parsers (each raises ValueError with a message that reads after "<key>: ")

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10,
    "m": 10**6, "mb": 10**6, "mi": 2**20, "mib": 2**20,
    "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30,
    "t": 10**12, "tb": 10**12, "ti": 2**40, "tib": 2**40,
    "p": 10**15, "pb": 10**15, "pi": 2**50, "pib": 2**50,
    "e": 10**18, "eb": 10**18, "ei": 2**60, "eib": 2**60,
}


def parse_size(text: str) -> int:
    """Human byte size: ``"100 MB"`` (10^6), ``"1 GiB"`` (2^30), ``"1.5k"``, ``"4096"``."""
    match = _SIZE.fullmatch(str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r} (expected a number of bytes such as 4096, '100 MB' or '1 GiB')")
    number = match.group(1)
    if "." in number:
        whole, _, fraction = number.partition(".")
        value = (int(whole or "0") * 10 ** len(fraction) + int(fraction or "0")) * _SIZE_UNITS[unit] // 10 ** len(fraction)
    else:
        value = int(number) * _SIZE_UNITS[unit]
    if value > MAXIMUM_UINT64:
        raise ValueError(f"invalid size {text!r}: larger than 2^64-1 bytes")
    return value


def _choice(values: tuple[str, ...], what: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in values:
            raise ValueError(f"invalid {what} {value!r} (expected one of: {', '.join(values)})")
        return value

    return parse


def _enum(kind, what: str) -> Callable[[Any], Any]:
    def parse(value: Any):
        if not isinstance(value, str):
            raise ValueError(f"invalid {what} {value!r} (expected a string)")
        return kind.parse(value, what)

    return parse


def _unsigned(what: str, maximum: int) -> Callable[[Any], Optional[int]]:
    def parse(value: Any) -> Optional[int]:
        if isinstance(value, bool) or not isinstance(value, int):
            text = str(value).strip()
            if not text.isascii() or not text.isdigit():
                raise ValueError(f"invalid {what} {value!r} (expected a whole number)")
            value = int(text)
        if not 0 <= value <= maximum:
            raise ValueError(f"invalid {what} {value!r} (expected 0 to {maximum})")
        return value or None  # 0 means "not set": use the default

    return parse


def _size(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}")
    if isinstance(value, int):
        if value < 0 or value > MAXIMUM_UINT64:
            raise ValueError(f"invalid size {value!r} (expected 0 to 2^64-1 bytes)")
        return value or None
    return parse_size(value) or None


def _mode(what: str) -> Callable[[Any], Optional[int]]:
    def parse(value: Any) -> Optional[int]:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"invalid {what} {value!r} (expected an octal mode such as 0644)")
        text = getattr(value, "yaml_text", None) or str(value)
        if text.strip() in ("0", "00", "000", "0000"):
            return None
        return parse_mode(text, what)

    return parse


def _ownership(what: str) -> Callable[[Any], Optional[str]]:
    """Owner/group specifications are resolved on the endpoint's machine; only the form is checked."""

    def parse(value: Any) -> Optional[str]:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"invalid {what} {value!r} (write a numeric id as 'id:{value}')")
        if not isinstance(value, str):
            raise ValueError(f"invalid {what} {value!r} (expected a name or id:N)")
        if value == "":
            return None
        if value.startswith("id:"):
            number = value[3:]
            if not number.isascii() or not number.isdigit() or int(number) > MAXIMUM_UINT32 - 1:
                raise ValueError(f"invalid {what} {value!r} ('id:' must be followed by a number)")
        elif ":" in value or "/" in value or any(c.isspace() for c in value):
            raise ValueError(f"invalid {what} {value!r} (expected a name or id:N)")
        return value

    return parse


def _bool(what: str) -> Callable[[Any], bool]:
    def parse(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"invalid {what} {value!r} (expected true or false)")
        return value

    return parse


# ---------------------------------------------------------------------------------------------
# The configuration model


@dataclass(frozen=True)
class EndpointConfiguration:
    """Settings that may differ between the two sides of a sync session (None = not set)."""

    probe_mode: Optional[str] = None
    scan_mode: Optional[ScanMode] = None
    stage_mode: Optional[StageMode] = None
    watch_mode: Optional[WatchMode] = None
    watch_polling_interval: Optional[int] = None
    default_file_mode: Optional[int] = None
    default_directory_mode: Optional[int] = None
    default_owner: Optional[str] = None
    default_group: Optional[str] = None
    compression: Optional[str] = None
    max_entry_count: Optional[int] = None
    max_staging_file_size: Optional[int] = None


@dataclass(frozen=True)
class SyncConfiguration:
    """One layer of sync settings. Session-wide fields plus the session-wide values of the
    endpoint-capable settings (``common``) and per-side overrides (``alpha``, ``beta``)."""

    mode: Optional[Mode] = None
    hash: Optional[HashAlgorithm] = None
    symlink_mode: Optional[SymlinkMode] = None
    ignore_syntax: Optional[IgnoreSyntax] = None
    ignores: tuple[str, ...] = ()
    ignore_vcs: Optional[bool] = None
    permissions_mode: Optional[PermissionsMode] = None
    common: EndpointConfiguration = field(default_factory=EndpointConfiguration)
    alpha: EndpointConfiguration = field(default_factory=EndpointConfiguration)
    beta: EndpointConfiguration = field(default_factory=EndpointConfiguration)

    def endpoint(self, side: str) -> EndpointConfiguration:
        """The endpoint settings in force on ``side`` ("alpha" or "beta"), still with Nones."""
        if side not in ("alpha", "beta"):
            raise ValueError(f"invalid side {side!r} (expected alpha or beta)")
        return _overlay(self.common, getattr(self, side))


@dataclass(frozen=True)
class SocketConfiguration:
    overwrite_mode: Optional[str] = None
    owner: Optional[str] = None
    group: Optional[str] = None
    permission_mode: Optional[int] = None


@dataclass(frozen=True)
class ForwardConfiguration:
    common: SocketConfiguration = field(default_factory=SocketConfiguration)
    source: SocketConfiguration = field(default_factory=SocketConfiguration)
    destination: SocketConfiguration = field(default_factory=SocketConfiguration)

    def endpoint(self, side: str) -> SocketConfiguration:
        if side not in ("source", "destination"):
            raise ValueError(f"invalid side {side!r} (expected source or destination)")
        return _overlay(self.common, getattr(self, side))


@dataclass(frozen=True)
class GlobalConfiguration:
    sync: SyncConfiguration = field(default_factory=SyncConfiguration)
    forward: ForwardConfiguration = field(default_factory=ForwardConfiguration)


def _overlay(lower, higher):
    """``higher``'s set fields over ``lower`` (same dataclass type; flat fields only)."""
    changes = {f.name: getattr(higher, f.name) for f in dataclasses.fields(higher) if getattr(higher, f.name) is not None}
    return dataclasses.replace(lower, **changes) if changes else lower


def merge_sync(*layers: SyncConfiguration) -> SyncConfiguration:
    """Merge layers, lowest precedence first: set fields override, ignore lists concatenate."""
    result = SyncConfiguration()
    for layer in layers:
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(SyncConfiguration):
            value = getattr(layer, f.name)
            if f.name == "ignores":
                changes["ignores"] = result.ignores + tuple(value)
            elif f.name in ("common", "alpha", "beta"):
                changes[f.name] = _overlay(getattr(result, f.name), value)
            elif value is not None:
                changes[f.name] = value
        result = dataclasses.replace(result, **changes)
    return result


def merge_forward(*layers: ForwardConfiguration) -> ForwardConfiguration:
    result = ForwardConfiguration()
    for layer in layers:
        result = ForwardConfiguration(
            _overlay(result.common, layer.common),
            _overlay(result.source, layer.source),
            _overlay(result.destination, layer.destination),
        )
    return result


# Built-in defaults (session version 1). Compression is left to the transport when unset.
SYNC_DEFAULTS = SyncConfiguration(
    mode=Mode.TWO_WAY_SAFE,
    hash=HashAlgorithm.XXH128,
    symlink_mode=SymlinkMode.PORTABLE,
    ignore_syntax=IgnoreSyntax.MUTAGEN,
    ignore_vcs=False,
    permissions_mode=PermissionsMode.PORTABLE,
    common=EndpointConfiguration(
        probe_mode="probe",
        scan_mode=ScanMode.ACCELERATED,
        stage_mode=StageMode.DATA_DIRECTORY,
        watch_mode=WatchMode.PORTABLE,
        watch_polling_interval=DEFAULT_WATCH_POLLING_INTERVAL,
        default_file_mode=DEFAULT_FILE_MODE,
        default_directory_mode=DEFAULT_DIRECTORY_MODE,
    ),
)
FORWARD_DEFAULTS = ForwardConfiguration(common=SocketConfiguration(overwrite_mode="leave", permission_mode=0o600))


def validate_sync(configuration: SyncConfiguration) -> None:
    """Cross-setting checks on a merged configuration (defaults applied where unset).

    Raises ValueError naming the side and the setting, e.g. a default file mode with x bits in
    portable permissions mode, or an invalid ignore pattern for the chosen syntax.
    """
    resolved = merge_sync(SYNC_DEFAULTS, configuration)
    for pattern in resolved.ignores:
        validate_pattern(pattern, resolved.ignore_syntax)
    for side in ("alpha", "beta"):
        endpoint = resolved.endpoint(side)
        try:
            validate_default_file_mode(endpoint.default_file_mode, resolved.permissions_mode)
            validate_default_directory_mode(endpoint.default_directory_mode)
        except ValueError as error:
            raise ValueError(f"invalid configuration for {side}: {error}") from None


# ---------------------------------------------------------------------------------------------
# YAML


class _YamlInt(int):
    """An int that remembers how it was written (so modes can be read as octal text)."""

    yaml_text: str


class _Loader(yaml.SafeLoader):
    pass


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    value = _YamlInt(yaml.SafeLoader.construct_yaml_int(loader, node))
    value.yaml_text = node.value
    return value


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)

# YAML key -> (field name, parser)
_ENDPOINT_KEYS: dict[str, Any] = {
    "maxEntryCount": ("max_entry_count", _unsigned("maximum entry count", MAXIMUM_UINT64)),
    "maxStagingFileSize": ("max_staging_file_size", _size),
    "probeMode": ("probe_mode", _choice(PROBE_MODES, "probe mode")),
    "scanMode": ("scan_mode", _enum(ScanMode, "scan mode")),
    "stageMode": ("stage_mode", _enum(StageMode, "stage mode")),
    "watch": {
        "mode": ("watch_mode", _enum(WatchMode, "watch mode")),
        "pollingInterval": ("watch_polling_interval", _unsigned("watch polling interval", MAXIMUM_UINT32)),
    },
    "permissions": {
        "defaultFileMode": ("default_file_mode", _mode("default file mode")),
        "defaultDirectoryMode": ("default_directory_mode", _mode("default directory mode")),
        "defaultOwner": ("default_owner", _ownership("default owner")),
        "defaultGroup": ("default_group", _ownership("default group")),
    },
    "compression": {"algorithm": ("compression", _choice(COMPRESSION_ALGORITHMS, "compression algorithm"))},
}
_SESSION_KEYS: dict[str, Any] = {
    "mode": ("mode", _enum(Mode, "synchronization mode")),
    "hash": ("hash", _enum(HashAlgorithm, "hash algorithm")),
    "ignore": {
        "syntax": ("ignore_syntax", _enum(IgnoreSyntax, "ignore syntax")),
        "paths": ("ignores", None),
        "vcs": ("ignore_vcs", _bool("VCS ignore setting")),
    },
    "symlink": {"mode": ("symlink_mode", _enum(SymlinkMode, "symbolic link mode"))},
    "permissions": {"mode": ("permissions_mode", _enum(PermissionsMode, "permissions mode"))},
}
_SOCKET_KEYS: dict[str, Any] = {
    "socket": {
        "overwriteMode": ("overwrite_mode", _choice(SOCKET_OVERWRITE_MODES, "socket overwrite mode")),
        "owner": ("owner", _ownership("socket owner")),
        "group": ("group", _ownership("socket group")),
        "permissionMode": ("permission_mode", _mode("socket permission mode")),
    }
}


def _merge_schemas(a: dict, b: dict) -> dict:
    merged = dict(a)
    for key, value in b.items():
        merged[key] = _merge_schemas(merged[key], value) if key in merged else value
    return merged


def _walk(data: Any, schema: dict, where: str, out: dict[str, Any]) -> None:
    """Check ``data`` against ``schema`` and collect field values into ``out``."""
    if data is None:
        return
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, found {type(data).__name__}")
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in schema:
            raise ValueError(f"{path}: unknown key (expected one of: {', '.join(schema)})")
        entry = schema[key]
        if isinstance(entry, dict):
            _walk(value, entry, path, out)
            continue
        name, parse = entry
        if value is None:
            continue
        if name == "ignores":
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise ValueError(f"{path}: expected a list of pattern strings")
            out[name] = tuple(value)
            continue
        try:
            out[name] = parse(value)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None


def _sync_from_yaml(data: Any, where: str) -> SyncConfiguration:
    if data is None:
        return SyncConfiguration()
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, found {type(data).__name__}")
    data = dict(data)
    sides = {}
    for yaml_key, side in (("configurationAlpha", "alpha"), ("configurationBeta", "beta")):
        values: dict[str, Any] = {}
        _walk(data.pop(yaml_key, None), _ENDPOINT_KEYS, f"{where}.{yaml_key}", values)
        sides[side] = EndpointConfiguration(**values)
    values = {}
    schema = _merge_schemas(_SESSION_KEYS, _ENDPOINT_KEYS)
    schema["configurationAlpha"] = schema["configurationBeta"] = {}  # listed in messages
    _walk(data, schema, where, values)
    endpoint_fields = {f.name for f in dataclasses.fields(EndpointConfiguration)}
    common = EndpointConfiguration(**{k: v for k, v in values.items() if k in endpoint_fields})
    session = {k: v for k, v in values.items() if k not in endpoint_fields}
    return SyncConfiguration(**session, common=common, **sides)


def _forward_from_yaml(data: Any, where: str) -> ForwardConfiguration:
    if data is None:
        return ForwardConfiguration()
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, found {type(data).__name__}")
    data = dict(data)
    sides = {}
    for yaml_key, side in (("configurationSource", "source"), ("configurationDestination", "destination")):
        values: dict[str, Any] = {}
        _walk(data.pop(yaml_key, None), _SOCKET_KEYS, f"{where}.{yaml_key}", values)
        sides[side] = SocketConfiguration(**values)
    values = {}
    schema = dict(_SOCKET_KEYS, configurationSource={}, configurationDestination={})
    _walk(data, schema, where, values)
    return ForwardConfiguration(common=SocketConfiguration(**values), **sides)


def parse_configuration(text: str, source: str = "<string>") -> GlobalConfiguration:
    """Parse the YAML text of a global or ``-c`` file; ValueError names ``source`` and the key."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ValueError(f"invalid configuration file {source!r}: not valid YAML: {detail}") from None
    try:
        if data is None:
            return GlobalConfiguration()
        if not isinstance(data, dict):
            raise ValueError(f"top level: expected a mapping, found {type(data).__name__}")
        for key in data:
            if key not in ("sync", "forward"):
                raise ValueError(f"{key}: unknown key (expected one of: sync, forward)")
        sync = forward = None
        for key, builder in (("sync", _sync_from_yaml), ("forward", _forward_from_yaml)):
            section = data.get(key)
            if section is None:
                continue
            if not isinstance(section, dict):
                raise ValueError(f"{key}: expected a mapping, found {type(section).__name__}")
            for sub in section:
                if sub != "defaults":
                    raise ValueError(f"{key}.{sub}: unknown key (expected: defaults)")
            if key == "sync":
                sync = builder(section.get("defaults"), f"{key}.defaults")
            else:
                forward = builder(section.get("defaults"), f"{key}.defaults")
        return GlobalConfiguration(sync or SyncConfiguration(), forward or ForwardConfiguration())
    except ValueError as error:
        raise ValueError(f"invalid configuration file {source!r}: {error}") from None


def global_configuration_path(home: Optional[str] = None) -> str:
    return os.path.join(home or os.path.expanduser("~"), GLOBAL_CONFIGURATION_NAME)


def load_configuration_file(path: str, *, required: bool = True) -> GlobalConfiguration:
    """Read and parse one file; a missing file is empty unless ``required``."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        if required:
            raise ValueError(f"invalid configuration file {path!r}: no such file") from None
        return GlobalConfiguration()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"invalid configuration file {path!r}: cannot read it ({error})") from None
    return parse_configuration(text, path)


def sync_configuration(
    flags: SyncConfiguration = SyncConfiguration(),
    files: tuple[str, ...] | list[str] = (),
    *,
    use_global: bool = True,
    global_path: Optional[str] = None,
) -> SyncConfiguration:
    """The configuration of a new sync session: global < ``-c`` files in order < flags.

    Unset settings stay None (stored as "default", resolved with ``merge_sync(SYNC_DEFAULTS,
    …)`` at run time). Validated before it is returned.
    """
    layers = []
    if use_global:
        layers.append(load_configuration_file(global_path or global_configuration_path(), required=False).sync)
    layers.extend(load_configuration_file(path).sync for path in files)
    layers.append(flags)
    merged = merge_sync(*layers)
    validate_sync(merged)
    return merged


def forward_configuration(
    flags: ForwardConfiguration = ForwardConfiguration(),
    files: tuple[str, ...] | list[str] = (),
    *,
    use_global: bool = True,
    global_path: Optional[str] = None,
) -> ForwardConfiguration:
    layers = []
    if use_global:
        layers.append(load_configuration_file(global_path or global_configuration_path(), required=False).forward)
    layers.extend(load_configuration_file(path).forward for path in files)
    layers.append(flags)
    return merge_forward(*layers)


def vcs_flag(ignore_vcs: bool, no_ignore_vcs: bool) -> Optional[bool]:
    """The ``--ignore-vcs`` / ``--no-ignore-vcs`` pair as a setting (None when neither is given)."""
    if ignore_vcs and no_ignore_vcs:
        raise ValueError("conflicting VCS ignore behavior specified (--ignore-vcs and --no-ignore-vcs)")
    if ignore_vcs:
        return True
    if no_ignore_vcs:
        return False
    return None


def split_flag_values(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """pflag string-slice behaviour for ``-i``/``-l``/``-c``: every value is split on commas."""
    return tuple(item for value in values for item in value.split(","))


__all__ = [
    "EndpointConfiguration",
    "ForwardConfiguration",
    "GlobalConfiguration",
    "SocketConfiguration",
    "SyncConfiguration",
    "SYNC_DEFAULTS",
    "FORWARD_DEFAULTS",
    "forward_configuration",
    "global_configuration_path",
    "load_configuration_file",
    "merge_forward",
    "merge_sync",
    "parse_configuration",
    "parse_size",
    "split_flag_values",
    "sync_configuration",
    "validate_sync",
    "vcs_flag",
]

