"""``forward create`` flags -> a validated ``ForwardCreate`` message (pure apart from reading the
configuration files, the current directory/home for unix socket paths and user/group look-ups).
Mirrors ``sync_arguments``.

``build_create(options)`` takes the command's options by their click parameter names (strings as
typed; ``None``/empty = not given) and returns the message the daemon gets. Everything a user can
get wrong is checked here, before the daemon is contacted, and reported as ``ArgumentError`` (a
ValueError) with one line naming the flag, side or file and what was expected:

- URLs (``supervisor.urls.parse_forward_url``): protocol, host/port form, port range; a local
  endpoint is also checked by the forwarding engine's parser (unix socket path length, IPv6
  brackets); the same local endpoint twice;
- name and labels (``supervisor.identity``);
- ``--socket-overwrite-mode*`` (``leave``/``overwrite``), ``--socket-owner*`` /
  ``--socket-group*`` (a name, a number or ``id:N``; a name is looked up when the source is
  local: only the source listens), ``--socket-permission-mode*`` (octal, at most 0777);
- configuration files (``forward.defaults`` of the global file and ``-c`` files, through
  ``supervisor.configuration``: the file and the key are named).

Precedence, lowest first: defaults < global file (``~/.mutagen-actors.yml`` unless
``--no-global-configuration``) < each ``-c`` file in order < flags; a ``-source`` /
``-destination`` flag or ``configurationSource`` / ``configurationDestination`` wins over the
session-wide value on that side only.
"""

from __future__ import annotations

import grp
import pwd
from typing import Any, Callable, Mapping, Optional

from mutagen_actors.actors.forward.endpoints import ForwardingError, parse_endpoint
from mutagen_actors.actors.sync import permissions
from mutagen_actors.supervisor import configuration as config
from mutagen_actors.supervisor import urls
from mutagen_actors.wire.messages import forward as messages
from mutagen_actors.wire.messages.sync import EndpointUrl

from .flag_values import flag, flag_origin, given, name_and_labels

SIDES = ("source", "destination")
SOCKET_OPTIONS = ("socket_overwrite_mode", "socket_owner", "socket_group",
                  "socket_permission_mode")


class ArgumentError(ValueError):
    """Bad input to ``forward create``; ``str()`` is the one line shown to the user."""


def _overwrite_mode(text: str) -> str:
    if text not in config.SOCKET_OVERWRITE_MODES:
        raise ValueError(f"invalid socket overwrite mode {text!r} (expected one of: "
                         f"{', '.join(config.SOCKET_OVERWRITE_MODES)})")
    return text


def _ownership(what: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        number = text[3:] if text.startswith("id:") else text
        if number.isascii() and number.isdigit():
            if int(number) > permissions.MAXIMUM_ID:
                raise ValueError(f"invalid {what} {text!r}: ids go up to {permissions.MAXIMUM_ID}")
            return text
        if text.startswith("id:"):
            raise ValueError(f"invalid {what} {text!r}: 'id:' must be followed by a number")
        if ":" in text or "/" in text or any(c.isspace() for c in text):
            raise ValueError(f"invalid {what} {text!r} (expected a name, a number or id:N)")
        return text

    return parse


def _permission_mode(text: str) -> int:
    return permissions.parse_mode(text, "socket permission mode")


# option base name -> (SocketConfiguration field, parser)
PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "socket_overwrite_mode": ("overwrite_mode", _overwrite_mode),
    "socket_owner": ("owner", _ownership("socket owner")),
    "socket_group": ("group", _ownership("socket group")),
    "socket_permission_mode": ("permission_mode", _permission_mode),
}


def flags_layer(options: Mapping[str, Any]) -> config.ForwardConfiguration:
    """The configuration layer given by the flags (each value parsed; the flag named on error)."""
    layers: dict[str, dict[str, Any]] = {"common": {}, "source": {}, "destination": {}}
    for base, (field, parser) in PARSERS.items():
        for where, key in (("common", base), ("source", f"{base}_source"),
                           ("destination", f"{base}_destination")):
            text = given(options, key)
            if text is None:
                continue
            try:
                layers[where][field] = parser(text)
            except ValueError as error:
                raise ArgumentError(f"{flag(key)}: {error}") from None
    return config.ForwardConfiguration(
        common=config.SocketConfiguration(**layers["common"]),
        source=config.SocketConfiguration(**layers["source"]),
        destination=config.SocketConfiguration(**layers["destination"]))


def _origin(flags: config.ForwardConfiguration, field: str, side: str) -> str:
    """Which flag (or "a configuration file") set a socket setting in force on ``side``."""
    return flag_origin(flags, field, side, "socket_" + field)


def _check_owners(merged: config.ForwardConfiguration, flags: config.ForwardConfiguration,
                  local: Mapping[str, bool]) -> None:
    """Names of owners and groups exist on this machine (for a local source only: only the
    source listens; a remote source's names are resolved on the remote by our agent there)."""
    for side in SIDES:
        if side != "source" or not local[side]:
            continue
        settings = merged.endpoint(side)
        for field, lookup, what in (("owner", pwd.getpwnam, "user"),
                                    ("group", grp.getgrnam, "group")):
            value = getattr(settings, field)
            if not value:
                continue
            number = value[3:] if value.startswith("id:") else value
            if number.isascii() and number.isdigit():
                continue
            try:
                lookup(value)
            except KeyError:
                raise ArgumentError(f"{_origin(flags, field, side)}: unknown {what} "
                                    f"{value!r}") from None


def merge_layers(flags: config.ForwardConfiguration, files: tuple[str, ...], *,
                 use_global: bool, global_path: Optional[str] = None
                 ) -> config.ForwardConfiguration:
    """global (if used; missing is fine) < each ``-c`` file (missing is an error) < flags."""
    try:
        return config.forward_configuration(flags, files, use_global=use_global,
                                            global_path=global_path)
    except ValueError as error:
        raise ArgumentError(str(error)) from None


def _wire_socket(settings: config.SocketConfiguration) -> messages.SocketConfiguration:
    return messages.SocketConfiguration(
        overwrite_mode=settings.overwrite_mode or "", owner=settings.owner or "",
        group=settings.group or "", permission_mode=settings.permission_mode or 0)


def to_wire(merged: config.ForwardConfiguration) -> messages.ForwardConfiguration:
    """A merged layer (None = unset) as the wire form (""/0 = default)."""
    return messages.ForwardConfiguration(socket=_wire_socket(merged.common),
                                         source=_wire_socket(merged.source),
                                         destination=_wire_socket(merged.destination))


def _wire_url(url: urls.Url) -> EndpointUrl:
    return EndpointUrl(protocol=url.protocol, user=url.user, host=url.host, port=url.port,
                       path=url.path, environment=dict(url.environment))


def parse_endpoints(source: str, destination: str,
                    environment: Optional[Mapping[str, str]] = None) -> tuple[urls.Url, urls.Url]:
    """Both URLs parsed; local ones also checked by the forwarding engine's parser."""
    parsed = []
    for side, text in (("source", source), ("destination", destination)):
        try:
            url = urls.parse_forward_url(text, side, environment)
        except ValueError as error:
            raise ArgumentError(f"{side}: {error}") from None
        if not url.is_remote:
            try:
                parse_endpoint(url.path, listening=side == "source")
            except ForwardingError as error:
                raise ArgumentError(f"{side}: {error}") from None
        parsed.append(url)
    if not parsed[0].is_remote and not parsed[1].is_remote and parsed[0].path == parsed[1].path:
        raise ArgumentError(f"source and destination are the same endpoint ({parsed[0].path}): "
                            "forwarding would loop")
    return parsed[0], parsed[1]


def build_create(options: Mapping[str, Any], *, environment: Optional[Mapping[str, str]] = None,
                 global_path: Optional[str] = None) -> messages.ForwardCreate:
    """Validate ``forward create``'s options and build the request (see the module docstring).

    ``options`` keys: ``source``, ``destination``, ``name``, ``labels`` (list), ``paused``,
    ``configuration_files`` (list), ``no_global_configuration``, and each of
    ``SOCKET_OPTIONS`` with ``_source``/``_destination`` variants. Missing keys mean "not
    given".
    """
    name, labels = name_and_labels(options, ArgumentError)
    source, destination = parse_endpoints(options.get("source") or "",
                                          options.get("destination") or "", environment)
    flags = flags_layer(options)
    files = config.split_flag_values(tuple(options.get("configuration_files") or ()))
    merged = merge_layers(flags, files, use_global=not options.get("no_global_configuration"),
                          global_path=global_path)
    _check_owners(merged, flags, {"source": not source.is_remote,
                                  "destination": not destination.is_remote})
    return messages.ForwardCreate(
        source=_wire_url(source),
        destination=_wire_url(destination),
        name=name,
        labels=labels,
        paused=bool(options.get("paused")),
        configuration=to_wire(merged),
    )


def selection(specifications, label_selector: Optional[str], all_: bool, *,
              default_all: bool = False):
    """The validated selection (the same rules and texts as for sync sessions)."""
    from .selecting import ArgumentError as SyncArgumentError
    from .selecting import selection as sync_selection

    try:
        return sync_selection(specifications, label_selector, all_, default_all=default_all)
    except SyncArgumentError as error:
        raise ArgumentError(str(error)) from None
