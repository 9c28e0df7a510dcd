"""Endpoint URLs for synchronization and forwarding sessions (pure apart from ~ expansion and
the current directory; reference §2).

Synchronization URLs are checked in this order:

- ``docker://[user@]container/path`` (scheme case-insensitive): the container runs up to the
  first ``/`` and the path keeps its leading ``/``, except ``/~…`` (home-relative, becomes
  ``~…``) and ``/C:…`` (a Windows-container drive path, becomes ``C:…``). Docker's environment
  (``DOCKER_HOST`` …) is captured into the URL, each variable looked up first with the
  endpoint's prefix (``MUTAGEN_ALPHA_``/``MUTAGEN_BETA_``, or ``MUTAGEN_SOURCE_``/
  ``MUTAGEN_DESTINATION_`` for forwarding); only non-empty values are kept, and a prefixed
  variable that is set but empty hides the unprefixed one for that side.
- SCP-style SSH ``[user@]host[:port]:path`` when a ``:`` comes before the first ``/``. A
  relative or ``~`` path is resolved by the remote agent against the remote home directory.
- anything else is a local path: ``~``/``~user`` expanded, made absolute, cleaned.

Forwarding endpoints are ``<protocol>:<address>`` with protocol ``tcp``, ``tcp4``, ``tcp6``
(``host:port``, host may be empty or a bracketed IPv6 literal, port 1-65535) or ``unix`` (a
socket path, normalized like a local path when the endpoint is local). They are local as they
are, or behind ``[user@]host[:port]:`` (SSH; used when the text is not itself an endpoint and
has at least two colons) or ``docker://[user@]container:`` (Docker).

Every parse error is a ValueError with a one-line message naming the URL and the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

LOCAL = "local"
SSH = "ssh"
DOCKER = "docker"

DOCKER_SCHEME = "docker://"
DOCKER_ENVIRONMENT_VARIABLES = (
    "DOCKER_HOST",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_API_VERSION",
)
ENVIRONMENT_PREFIXES = {
    "alpha": "MUTAGEN_ALPHA_",
    "beta": "MUTAGEN_BETA_",
    "source": "MUTAGEN_SOURCE_",
    "destination": "MUTAGEN_DESTINATION_",
}
FORWARDING_PROTOCOLS = ("tcp", "tcp4", "tcp6", "unix")
MAXIMUM_PORT = 65535


@dataclass(frozen=True)
class Url:
    """A parsed endpoint URL. ``port`` 0 means the default; ``path`` is the synchronization root
    (sync) or the ``<protocol>:<address>`` endpoint (forwarding); ``environment`` holds captured
    Docker variables."""

    protocol: str
    user: str = ""
    host: str = ""
    port: int = 0
    path: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_remote(self) -> bool:
        return self.protocol != LOCAL


def _error(raw: str, problem: str) -> ValueError:
    return ValueError(f"invalid URL {raw!r}: {problem}")


def normalize_local_path(path: str) -> str:
    """Expand ``~``/``~user``, make absolute against the current directory, clean."""
    if path.startswith("~"):
        expanded = os.path.expanduser(path)
        if expanded.startswith("~"):
            user = path[1:].split("/", 1)[0]
            raise ValueError(f"unable to expand '~{user}': no such user")
        path = expanded
    return os.path.abspath(path)


def _capture_environment(side: str, environment: Mapping[str, str]) -> dict[str, str]:
    prefix = ENVIRONMENT_PREFIXES[side]
    captured: dict[str, str] = {}
    for variable in DOCKER_ENVIRONMENT_VARIABLES:
        value = environment.get(prefix + variable)
        if value is None:
            value = environment.get(variable, "")
        if value:
            captured[variable] = value
    return captured


def _check_side(side: str, allowed: tuple[str, ...]) -> None:
    if side not in allowed:
        raise ValueError(f"invalid endpoint side {side!r} (expected one of: {', '.join(allowed)})")


def _split_user(raw: str, text: str, stop: str) -> tuple[str, str]:
    """Split ``user@`` off ``text`` if an ``@`` comes before the first ``stop`` character."""
    for index, character in enumerate(text):
        if character == stop:
            break
        if character == "@":
            if index == 0:
                raise _error(raw, "empty username")
            return text[:index], text[index + 1 :]
    return "", text


def _split_ssh_prefix(raw: str) -> tuple[str, str, int, str]:
    """``[user@]host[:port]:rest`` -> (user, host, port, rest)."""
    user, text = _split_user(raw, raw, ":")
    host, colon, rest = text.partition(":")
    if not colon:
        raise _error(raw, "missing ':' after the host")
    if host == "":
        raise _error(raw, "empty hostname")
    port = 0
    for index, character in enumerate(rest):
        if character == ":":
            digits = rest[:index]
            if digits == "":
                raise _error(raw, "empty port")
            port = int(digits)
            if not 1 <= port <= MAXIMUM_PORT:
                raise _error(raw, f"port {digits} out of range (1-{MAXIMUM_PORT})")
            rest = rest[index + 1 :]
            break
        if not character.isascii() or not character.isdigit():
            break
    return user, host, port, rest


def _is_scp_ssh(raw: str) -> bool:
    for character in raw:
        if character == ":":
            return True
        if character == "/":
            return False
    return False


def parse_url(raw: str, side: str = "alpha", environment: Mapping[str, str] | None = None) -> Url:
    """Parse a synchronization URL for endpoint ``side`` ("alpha" or "beta")."""
    _check_side(side, ("alpha", "beta"))
    if raw == "":
        raise ValueError("invalid URL '': empty URL")
    if "\x00" in raw:
        raise _error(raw, "NUL character")
    if raw[: len(DOCKER_SCHEME)].lower() == DOCKER_SCHEME:
        text = raw[len(DOCKER_SCHEME) :]
        user, text = _split_user(raw, text, "/")
        container, slash, path = text.partition("/")
        if container == "":
            raise _error(raw, "empty container name")
        if not slash:
            raise _error(raw, "missing path after the container name")
        path = "/" + path
        if path.startswith("/~"):
            path = path[1:]
        elif len(path) >= 3 and path[1].isalpha() and path[2] == ":":
            path = path[1:]
        env = _capture_environment(side, os.environ if environment is None else environment)
        return Url(DOCKER, user, container, 0, path, env)
    if _is_scp_ssh(raw):
        user, host, port, path = _split_ssh_prefix(raw)
        if path == "":
            raise _error(raw, "empty path")
        return Url(SSH, user, host, port, path)
    try:
        return Url(LOCAL, path=normalize_local_path(raw))
    except ValueError as error:
        raise _error(raw, str(error)) from None


def format_url(url: Url) -> str:
    """The URL as a user writes it (environment variables are not part of the text)."""
    if url.protocol == LOCAL:
        return url.path
    user = f"{url.user}@" if url.user else ""
    if url.protocol == SSH:
        port = f":{url.port}" if url.port else ""
        return f"{user}{url.host}{port}:{url.path}"
    if url.protocol == DOCKER:
        if _is_forwarding_endpoint(url.path):
            return f"{DOCKER_SCHEME}{user}{url.host}:{url.path}"
        path = url.path if url.path.startswith("/") else "/" + url.path
        return f"{DOCKER_SCHEME}{user}{url.host}{path}"
    raise ValueError(f"unknown URL protocol {url.protocol!r}")


# ---------------------------------------------------------------------------------------------
# Forwarding


def _split_host_port(address: str) -> tuple[str, str]:
    """Go's net.SplitHostPort rules, raising ValueError with the reason."""
    if address.startswith("["):
        close = address.find("]")
        if close < 0:
            raise ValueError("missing ']' in address")
        host, rest = address[1:close], address[close + 1 :]
        if not rest.startswith(":"):
            raise ValueError("missing port in address")
        port = rest[1:]
        if ":" in port:
            raise ValueError("too many colons in address")
        return host, port
    host, colon, port = address.rpartition(":")
    if not colon:
        raise ValueError("missing port in address")
    if ":" in host:
        raise ValueError("too many colons in address (write IPv6 hosts as [addr]:port)")
    if "[" in host or "]" in host:
        raise ValueError("unexpected bracket in address")
    return host, port


def parse_forwarding_endpoint(text: str, local: bool = True) -> tuple[str, str]:
    """Split and check ``<protocol>:<address>``; returns (protocol, address).

    unix addresses are normalized like local paths when ``local``.
    """
    protocol, colon, address = text.partition(":")
    if not colon or protocol not in FORWARDING_PROTOCOLS:
        known = ", ".join(FORWARDING_PROTOCOLS)
        raise ValueError(f"invalid forwarding endpoint {text!r}: expected <protocol>:<address> with protocol one of {known}")
    if protocol == "unix":
        if address == "":
            raise ValueError(f"invalid forwarding endpoint {text!r}: empty socket path")
        if local:
            try:
                address = normalize_local_path(address)
            except ValueError as error:
                raise ValueError(f"invalid forwarding endpoint {text!r}: {error}") from None
        return protocol, address
    try:
        host, port = _split_host_port(address)
    except ValueError as error:
        raise ValueError(f"invalid forwarding endpoint {text!r}: {error}") from None
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= MAXIMUM_PORT:
        raise ValueError(f"invalid forwarding endpoint {text!r}: port {port!r} is not a number between 1 and {MAXIMUM_PORT}")
    if protocol == "tcp4" and ":" in host:
        raise ValueError(f"invalid forwarding endpoint {text!r}: an IPv6 host with tcp4")
    return protocol, address


def _is_forwarding_endpoint(text: str) -> bool:
    try:
        parse_forwarding_endpoint(text, local=False)
    except ValueError:
        return False
    return True


def parse_forward_url(raw: str, kind: str, environment: Mapping[str, str] | None = None) -> Url:
    """Parse a forwarding URL for endpoint ``kind`` ("source" listens, "destination" dials)."""
    _check_side(kind, ("source", "destination"))
    if raw == "":
        raise ValueError("invalid URL '': empty URL")
    if raw[: len(DOCKER_SCHEME)].lower() == DOCKER_SCHEME:
        text = raw[len(DOCKER_SCHEME) :]
        user, text = _split_user(raw, text, ":")
        container, colon, endpoint = text.partition(":")
        if container == "":
            raise _error(raw, "empty container name")
        if "/" in container:
            raise _error(raw, "a forwarding Docker URL separates the container and the endpoint with ':'")
        if not colon:
            raise _error(raw, "missing forwarding endpoint after the container name")
        try:
            protocol, address = parse_forwarding_endpoint(endpoint, local=False)
        except ValueError as error:
            raise _error(raw, str(error)) from None
        env = _capture_environment(kind, os.environ if environment is None else environment)
        return Url(DOCKER, user, container, 0, f"{protocol}:{address}", env)
    protocol = raw.partition(":")[0]
    if protocol in FORWARDING_PROTOCOLS:
        protocol, address = parse_forwarding_endpoint(raw, local=True)
        return Url(LOCAL, path=f"{protocol}:{address}")
    if raw.count(":") >= 2:
        user, host, port, endpoint = _split_ssh_prefix(raw)
        try:
            protocol, address = parse_forwarding_endpoint(endpoint, local=False)
        except ValueError as error:
            raise _error(raw, str(error)) from None
        return Url(SSH, user, host, port, f"{protocol}:{address}")
    raise _error(raw, "not a forwarding endpoint (expected tcp:HOST:PORT, unix:PATH, or one behind user@host: or docker://container:)")
