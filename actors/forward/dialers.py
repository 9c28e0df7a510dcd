"""Local dialers for ``tcp``, ``tcp4``, ``tcp6`` and ``unix`` endpoints (asyncio shell).

``make_dialer(endpoint, timeout)`` returns the relay's ``Dialer``: an ``async () ->
(SocketReader, SocketWriter)`` callable. Each call resolves the host again (addresses may
change), tries the resolved addresses in order and returns the first connection. Failure rule:
it raises ``ConnectionError`` / ``OSError`` whose text names the endpoint and the cause
(``connection refused``, ``timed out after N s``, ``cannot resolve``); no socket is left open.
"""

from __future__ import annotations

import asyncio
import os
import socket

from .endpoints import Endpoint
from .streams import Dialer, socket_pair

DEFAULT_DIAL_TIMEOUT = 10.0


class DialError(ConnectionError):
    """The destination could not be reached; ``str`` is one line."""


def make_dialer(endpoint: Endpoint, timeout: float = DEFAULT_DIAL_TIMEOUT) -> Dialer:
    async def dial():
        try:
            return await asyncio.wait_for(_dial(endpoint), timeout)
        except asyncio.TimeoutError:
            raise DialError(f"cannot connect to {endpoint}: timed out after {timeout:g} s") \
                from None

    return dial


async def _dial(endpoint: Endpoint):
    loop = asyncio.get_running_loop()
    if endpoint.is_unix:
        targets = [(socket.AF_UNIX, endpoint.path)]
    else:
        family = {"tcp": socket.AF_UNSPEC, "tcp4": socket.AF_INET,
                  "tcp6": socket.AF_INET6}[endpoint.protocol]
        try:
            infos = _numeric(endpoint, family) or await loop.getaddrinfo(
                endpoint.host, endpoint.port, family=family, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise DialError(f"cannot connect to {endpoint}: cannot resolve {endpoint.host!r} "
                            f"({error.strerror})") from None
        targets = [(info[0], info[4]) for info in infos]
    last: OSError | None = None
    for family_, address in targets:
        sock = socket.socket(family_, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as error:
            sock.close()
            last = error
            continue
        except BaseException:
            sock.close()
            raise
        return socket_pair(sock)
    if last is None:
        reason = "no address"
    elif last.errno:
        reason = os.strerror(last.errno).lower()
    else:
        reason = str(last)
    raise DialError(f"cannot connect to {endpoint}: {reason}")


def _numeric(endpoint: Endpoint, family: int) -> list:
    """Addresses of a numeric host without a trip through the resolver's thread pool (empty
    for a host name)."""
    try:
        return socket.getaddrinfo(endpoint.host, endpoint.port, family, socket.SOCK_STREAM, 0,
                                  socket.AI_NUMERICHOST)
    except socket.gaierror:
        return []
