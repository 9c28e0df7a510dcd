"""How the CLI shows forwarding sessions (pure: states in, text or JSON-ready dicts out).
Mirrors ``sync_output``.

- ``list_lines(states, long)``: Mutagen's ``forward list`` layout. Each session is preceded by a
  delimiter line of 80 ``-`` and one more follows the last; with no sessions the text
  ``No forwarding sessions found`` sits between two delimiters. Per session: ``Name`` (if any),
  ``Identifier``, (long: ``Labels``), ``Source:`` and ``Destination:`` with ``URL``, (long: the
  socket ``Configuration`` in force on that side, ``Default (…)`` for unset values) and
  ``Connected``, then ``Last error`` (if any), ``Status`` and, while forwarding,
  ``Connections: N open, M total, X outbound, Y inbound`` (bytes in SI units).
- ``session_json(state)``: one JSON object with Mutagen's camelCase field names.
- ``monitor_header_lines(state, long)`` and ``monitor_line(state)``: what ``forward monitor``
  prints once, and the status line it rewrites.

Nothing here raises on unusual values (unknown status words are shown as they are).
"""

from __future__ import annotations

from mutagen_actors.wire.messages.forward import (
    FORWARD_STATUS_DESCRIPTIONS,
    ForwardConfiguration,
    ForwardEndpointState,
    ForwardSessionState,
    SocketConfiguration,
)

from .session_output import (
    delimited,
    format_url,
    heading_lines,
    humanize_bytes,
    rfc3339,
    set_fields,
    status_text,
    url_json,
)

NO_SESSIONS = "No forwarding sessions found"
DEFAULT_OVERWRITE_MODE = "leave"
DEFAULT_PERMISSION_MODE = 0o600
OVERWRITE_DESCRIPTIONS = {"leave": "Leave", "overwrite": "Overwrite"}
SOCKET_FIELDS = tuple(SocketConfiguration.__struct_fields__)


def effective_socket(configuration: ForwardConfiguration, side: str) -> SocketConfiguration:
    """The session-wide socket settings overridden by ``side``'s non-default values."""
    own = getattr(configuration, side)
    return SocketConfiguration(**{name: getattr(own, name) or getattr(configuration.socket, name)
                                  for name in SOCKET_FIELDS})


def status_description(state: ForwardSessionState) -> str:
    return status_text(state, FORWARD_STATUS_DESCRIPTIONS)


def connections_text(state: ForwardSessionState) -> str:
    """``N open, M total, X outbound, Y inbound``."""
    return (f"{state.open_connections} open, {state.total_connections} total, "
            f"{humanize_bytes(state.total_outbound_data)} outbound, "
            f"{humanize_bytes(state.total_inbound_data)} inbound")


def _socket_lines(settings: SocketConfiguration) -> list[str]:
    if settings.overwrite_mode:
        overwrite = OVERWRITE_DESCRIPTIONS.get(settings.overwrite_mode, settings.overwrite_mode)
    else:
        overwrite = f"Default ({OVERWRITE_DESCRIPTIONS[DEFAULT_OVERWRITE_MODE]})"
    if settings.permission_mode:
        mode = f"{settings.permission_mode:04o}"
    else:
        mode = f"Default ({DEFAULT_PERMISSION_MODE:04o})"
    return ["\tConfiguration:",
            f"\t\tSocket overwrite mode: {overwrite}",
            f"\t\tSocket owner: {settings.owner or 'Default'}",
            f"\t\tSocket group: {settings.group or 'Default'}",
            f"\t\tSocket permission mode: {mode}"]


def _endpoint_lines(title: str, state: ForwardEndpointState, settings: SocketConfiguration,
                    mode: str) -> list[str]:
    lines = [f"{title}:", f"\tURL: {format_url(state.url)}"]
    if mode in ("long", "monitor-long"):
        lines.extend(_socket_lines(settings))
    if not mode.startswith("monitor"):
        lines.append(f"\tConnected: {'Yes' if state.connected else 'No'}")
    return lines


def session_lines(state: ForwardSessionState, mode: str = "list") -> list[str]:
    """One session's block. ``mode``: ``list``, ``long``, ``monitor`` or ``monitor-long``."""
    lines = heading_lines(state, labels=mode in ("long", "monitor-long"))
    for title, side in (("Source", "source"), ("Destination", "destination")):
        lines.extend(_endpoint_lines(title, getattr(state, side),
                                     effective_socket(state.configuration, side), mode))
    if mode.startswith("monitor"):
        return lines
    if state.last_error:
        lines.append(f"Last error: {state.last_error}")
    lines.append(f"Status: {status_description(state)}")
    if not state.paused and state.status == "forwarding":
        lines.append(f"Connections: {connections_text(state)}")
    return lines


def list_lines(states: list[ForwardSessionState], long: bool = False) -> list[str]:
    return delimited((session_lines(state, "long" if long else "list") for state in states),
                     NO_SESSIONS)


# ---------------------------------------------------------------------------------- monitor


def monitor_header_lines(state: ForwardSessionState, long: bool = False) -> list[str]:
    return session_lines(state, "monitor-long" if long else "monitor")


def monitor_line(state: ForwardSessionState) -> str:
    """``Status: [Paused]`` or ``Status: [X] <status>: N open, M total, X outbound, Y inbound``
    (``[X]`` when there is a last error; the counts while forwarding)."""
    if state.paused:
        return "Status: [Paused]"
    text = "Status: " + ("[X] " if state.last_error else "")
    text += FORWARD_STATUS_DESCRIPTIONS.get(state.status, state.status)
    if state.status == "forwarding":
        text += ": " + connections_text(state)
    return text


# ------------------------------------------------------------------------------------- JSON


def _socket_json(settings: SocketConfiguration) -> dict:
    return set_fields(settings, {"overwriteMode": "overwrite_mode", "owner": "owner",
                                 "group": "group", "permissionMode": "permission_mode"})


def _endpoint_json(state: ForwardEndpointState, settings: SocketConfiguration) -> dict:
    data = url_json(state.url, "endpoint")
    socket = _socket_json(settings)
    if socket:
        data["socket"] = socket
    data["connected"] = state.connected
    return data


def session_json(state: ForwardSessionState) -> dict:
    """One session as Mutagen's JSON model (camelCase; unset settings omitted)."""
    data: dict = {"identifier": state.identifier, "version": 1,
                  "creationTime": rfc3339(state.created)}
    socket = _socket_json(state.configuration.socket)
    if socket:
        data["socket"] = socket
    data.update({
        "name": state.name,
        "labels": dict(state.labels),
        "paused": state.paused,
        "status": state.status,
        "lastError": state.last_error,
        "source": _endpoint_json(state.source, effective_socket(state.configuration, "source")),
        "destination": _endpoint_json(state.destination,
                                      effective_socket(state.configuration, "destination")),
        "listening": state.listening,
        "openConnections": state.open_connections,
        "totalConnections": state.total_connections,
        "totalOutboundData": state.total_outbound_data,
        "totalInboundData": state.total_inbound_data,
        "errors": state.errors,
    })
    return data


def list_json(states: list[ForwardSessionState]) -> list[dict]:
    return [session_json(state) for state in states]
