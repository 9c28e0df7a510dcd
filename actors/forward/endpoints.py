"""Local forwarding endpoints and unix-socket options: parsing and validation (pure).

An endpoint is ``<protocol>:<address>`` with protocol ``tcp``, ``tcp4``, ``tcp6`` or ``unix``:

- ``tcp:localhost:8080``, ``tcp::3000`` (empty host: every address), ``tcp4:127.0.0.1:80``,
  ``tcp6:[::1]:80`` (IPv6 literals need brackets);
- ``unix:/run/app.sock``; a relative or ``~`` path is made absolute against ``cwd`` / the home
  directory at parse time, so the forwarder does not depend on its working directory.

Failure rules: every problem raises ``ForwardingError`` whose text is the one line a CLI shows
(it names the endpoint and says what was expected). Nothing here touches the network or the
file system except ``os.path`` normalisation.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

PROTOCOLS = ("tcp", "tcp4", "tcp6", "unix")
UNIX_PATH_LIMIT = 107  # sun_path is 108 bytes on Linux, including the terminating NUL
DEFAULT_SOCKET_PERMISSION_MODE = 0o600


class ForwardingError(Exception):
    """A forwarding problem a user can act on; ``str(error)`` is a one-line message."""


@dataclass(frozen=True)
class Endpoint:
    """A parsed local endpoint. For TCP, ``host`` may be empty (every address) and ``port``
    0 (an ephemeral port, for listeners). For ``unix``, ``path`` is absolute."""

    protocol: str
    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def is_unix(self) -> bool:
        return self.protocol == "unix"

    def __str__(self) -> str:
        if self.is_unix:
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.protocol}:{host}:{self.port}"


class OverwriteMode(str, enum.Enum):
    """What a unix listener does when its path exists: ``leave`` fails, ``overwrite`` removes
    the existing file first (never a directory)."""

    LEAVE = "leave"
    OVERWRITE = "overwrite"


@dataclass(frozen=True)
class SocketOptions:
    """Unix-socket listener options. ``owner`` / ``group`` are names, numeric ids or ``id:N``
    ("" keeps the creating user's); ``permission_mode`` is applied to the socket file."""

    overwrite_mode: OverwriteMode = OverwriteMode.LEAVE
    owner: str = ""
    group: str = ""
    permission_mode: int = DEFAULT_SOCKET_PERMISSION_MODE


def parse_endpoint(text: str, *, listening: bool = True, cwd: str | None = None) -> Endpoint:
    """Parse ``<protocol>:<address>``. ``listening=False`` (a dialer) refuses an empty host and
    port 0. Raises ``ForwardingError``."""
    if not isinstance(text, str) or not text:
        raise ForwardingError("empty forwarding endpoint (expected <protocol>:<address>, "
                              "e.g. tcp:localhost:8080 or unix:/path/to.sock)")
    protocol, colon, address = text.partition(":")
    if not colon or protocol not in PROTOCOLS:
        raise ForwardingError(
            f"invalid forwarding endpoint {text!r}: expected <protocol>:<address> with protocol "
            f"one of {', '.join(PROTOCOLS)}")
    if protocol == "unix":
        return Endpoint("unix", path=_unix_path(text, address, cwd))
    host, port = _host_port(text, protocol, address)
    if not listening:
        if not host:
            raise ForwardingError(f"invalid forwarding endpoint {text!r}: a destination needs "
                                  "a host (e.g. tcp:localhost:8080)")
        if port == 0:
            raise ForwardingError(f"invalid forwarding endpoint {text!r}: a destination needs "
                                  "a port between 1 and 65535")
    return Endpoint(protocol, host=host, port=port)


def _unix_path(text: str, address: str, cwd: str | None) -> str:
    if not address:
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: the unix socket path is "
                              "empty")
    if "\0" in address:
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: the unix socket path "
                              "contains a NUL byte")
    path = os.path.expanduser(address)
    if not os.path.isabs(path):
        path = os.path.join(cwd if cwd is not None else os.getcwd(), path)
    path = os.path.normpath(path)
    size = len(os.fsencode(path))
    if size > UNIX_PATH_LIMIT:
        raise ForwardingError(
            f"unix socket path too long in {text!r}: {size} bytes, at most {UNIX_PATH_LIMIT} "
            "are allowed on Linux")
    return path


def _host_port(text: str, protocol: str, address: str) -> tuple[str, int]:
    host, colon, port_text = address.rpartition(":")
    if not colon:
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: expected "
                              f"{protocol}:<host>:<port> (the host may be empty)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not host or ":" not in host:
            raise ForwardingError(f"invalid forwarding endpoint {text!r}: brackets are only "
                                  "for IPv6 addresses")
    elif ":" in host or "[" in host or "]" in host:
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: IPv6 addresses must be "
                              "written in brackets, e.g. tcp6:[::1]:8080")
    if any(c.isspace() for c in host) or "/" in host or "@" in host:
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: {host!r} is not a host "
                              "name or address")
    if not port_text.isdigit() or not port_text.isascii():
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: port {port_text!r} is not "
                              "a number")
    port = int(port_text)
    if port > 65535:
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: port {port} is out of "
                              "range (0-65535)")
    if protocol == "tcp4" and ":" in host:
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: tcp4 takes an IPv4 "
                              "address or a host name")
    return host, port


def parse_overwrite_mode(text: str) -> OverwriteMode:
    try:
        return OverwriteMode(text)
    except ValueError:
        raise ForwardingError(f"invalid socket overwrite mode {text!r}: expected 'leave' or "
                              "'overwrite'") from None


def parse_permission_mode(text: str | int) -> int:
    """``"0600"``, ``"600"``, ``"0o600"`` or an int; at most 0o777."""
    if isinstance(text, int):
        value = text
    else:
        digits = text[2:] if text.lower().startswith("0o") else text
        if not digits or any(c not in "01234567" for c in digits):
            raise ForwardingError(f"invalid socket permission mode {text!r}: expected an octal "
                                  "mode such as 0600")
        value = int(digits, 8)
    if not 0 <= value <= 0o777:
        raise ForwardingError(f"invalid socket permission mode {text!r}: expected at most "
                              "0777 (no setuid, setgid or sticky bits)")
    return value


def socket_options(overwrite_mode: str = "leave", owner: str = "", group: str = "",
                   permission_mode: str | int = DEFAULT_SOCKET_PERMISSION_MODE) -> SocketOptions:
    """Validate option strings as given on a command line."""
    return SocketOptions(parse_overwrite_mode(overwrite_mode), owner, group,
                         parse_permission_mode(permission_mode))
