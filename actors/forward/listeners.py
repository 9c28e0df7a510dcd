"""Local listeners for ``tcp``, ``tcp4``, ``tcp6`` and ``unix`` endpoints (asyncio shell).

``await open_listener(endpoint, options)`` returns a ``Listener`` that is already listening;
``await listener.accept()`` yields ``(SocketReader, SocketWriter)`` pairs.

Rules:

- TCP: the host is resolved (``tcp`` any family, ``tcp4`` IPv4, ``tcp6`` IPv6) and the first
  address is bound, with ``SO_REUSEADDR`` (a restarted forwarder rebinds at once even with
  connections in TIME_WAIT; an active listener on the port still makes it fail). An empty
  host binds every address (``tcp``: dual-stack ``::`` when IPv6 exists, else ``0.0.0.0``).
- unix: an existing path fails with overwrite mode ``leave`` and is removed first with
  ``overwrite`` (a directory is never removed). With ``reclaim_stale`` (a restarted forwarder)
  a leftover *socket* nobody listens on is also removed: it is our previous incarnation's.
  The socket file is created with permissions 0600 or stricter (umask held during ``bind``),
  then given the requested mode, owner and group. On close the file is removed if it is still
  the one we created.
- Any failure raises ``ForwardingError`` with one line naming the endpoint and the cause, and
  leaves nothing behind (the socket is closed, a half-set-up socket file removed).
"""

from __future__ import annotations

import asyncio
import errno
import grp
import os
import pwd
import socket
import stat
import threading

from .endpoints import Endpoint, ForwardingError, OverwriteMode, SocketOptions
from .streams import ListenerClosed, socket_pair

BACKLOG = 512
_umask_lock = threading.Lock()


class Listener:
    def __init__(self, sock: socket.socket, endpoint: Endpoint, created: tuple[int, int] | None):
        self.socket = sock
        self.endpoint = endpoint
        self._created = created  # (st_dev, st_ino) of the unix socket file we made
        self._closed = False
        self._accepting: asyncio.Future | None = None

    def describe(self) -> str:
        """The address actually listened on (the real port when 0 was asked)."""
        if self.endpoint.is_unix:
            return f"unix:{self.endpoint.path}"
        host, port = self.socket.getsockname()[:2]
        host = f"[{host}]" if ":" in host else host
        return f"{self.endpoint.protocol}:{host}:{port}"

    @property
    def port(self) -> int:
        return 0 if self.endpoint.is_unix else self.socket.getsockname()[1]

    async def accept(self):
        if self._closed:
            raise ListenerClosed(self.describe())
        loop = asyncio.get_running_loop()
        try:
            connection, _ = await loop.sock_accept(self.socket)
        except OSError as error:
            if self._closed:
                raise ListenerClosed(str(self.endpoint)) from None
            raise error
        return socket_pair(connection)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.get_running_loop().remove_reader(self.socket.fileno())
        except (RuntimeError, ValueError):
            pass
        self.socket.close()
        if self._created is not None:
            _remove_if_ours(self.endpoint.path, self._created)


async def open_listener(endpoint: Endpoint, options: SocketOptions | None = None, *,
                        reclaim_stale: bool = False) -> Listener:
    if endpoint.is_unix:
        return _unix_listener(endpoint, options or SocketOptions(), reclaim_stale)
    return await _tcp_listener(endpoint)


async def _tcp_listener(endpoint: Endpoint) -> Listener:
    loop = asyncio.get_running_loop()
    family = {"tcp": socket.AF_UNSPEC, "tcp4": socket.AF_INET,
              "tcp6": socket.AF_INET6}[endpoint.protocol]
    if endpoint.host:
        try:
            infos = await loop.getaddrinfo(endpoint.host, endpoint.port, family=family,
                                           type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except socket.gaierror as error:
            raise ForwardingError(f"cannot listen on {endpoint}: cannot resolve "
                                  f"{endpoint.host!r} ({error.strerror})") from None
        infos.sort(key=lambda info: info[0] != socket.AF_INET)  # IPv4 first for plain tcp
        candidates = [(info[0], info[4]) for info in infos[:1]]
    elif endpoint.protocol == "tcp4":
        candidates = [(socket.AF_INET, ("0.0.0.0", endpoint.port))]
    elif endpoint.protocol == "tcp6":
        candidates = [(socket.AF_INET6, ("::", endpoint.port))]
    else:
        candidates = [(socket.AF_INET6, ("::", endpoint.port)),
                      (socket.AF_INET, ("0.0.0.0", endpoint.port))]
    error: OSError | None = None
    for family_, address in candidates:
        try:
            sock = socket.socket(family_, socket.SOCK_STREAM)
        except OSError as failure:  # e.g. no IPv6 on this machine
            error = failure
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family_ == socket.AF_INET6:
                dual = endpoint.protocol == "tcp" and not endpoint.host
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual else 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
        except OSError as failure:
            sock.close()
            error = failure
            if failure.errno in (errno.EADDRINUSE, errno.EACCES):
                break
            continue
        return Listener(sock, endpoint, None)
    raise ForwardingError(f"cannot listen on {endpoint}: {_describe(error)}")


def _unix_listener(endpoint: Endpoint, options: SocketOptions, reclaim_stale: bool) -> Listener:
    path = endpoint.path
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ForwardingError(f"cannot listen on {endpoint}: directory {parent} does not exist")
    uid, gid = _ids(endpoint, options)
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        existing = None
    except OSError as error:
        raise ForwardingError(f"cannot listen on {endpoint}: {_describe(error)}") from None
    if existing is not None:
        if stat.S_ISDIR(existing.st_mode):
            raise ForwardingError(f"cannot listen on {endpoint}: {path} is a directory")
        stale = reclaim_stale and stat.S_ISSOCK(existing.st_mode) and _nobody_listens(path)
        if options.overwrite_mode is OverwriteMode.LEAVE and not stale:
            raise ForwardingError(
                f"cannot listen on {endpoint}: {path} already exists (socket overwrite mode is "
                "'leave'; use 'overwrite' to replace it)")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise ForwardingError(f"cannot listen on {endpoint}: cannot remove the existing "
                                  f"{path}: {_describe(error)}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    created = None
    try:
        with _umask_lock:
            previous = os.umask(0o177)
            try:
                sock.bind(path)
            finally:
                os.umask(previous)
        info = os.lstat(path)
        created = (info.st_dev, info.st_ino)
        if uid != -1 or gid != -1:
            os.chown(path, uid, gid, follow_symlinks=False)
        os.chmod(path, options.permission_mode)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as error:
        sock.close()
        if created is not None:
            _remove_if_ours(path, created)
        raise ForwardingError(f"cannot listen on {endpoint}: {_describe(error)}") from None
    return Listener(sock, endpoint, created)


def _ids(endpoint: Endpoint, options: SocketOptions) -> tuple[int, int]:
    def resolve(value: str, kind: str, lookup) -> int:
        if not value:
            return -1
        text = value[3:] if value.startswith("id:") else value
        if text.isdigit():
            return int(text)
        try:
            return lookup(text)
        except KeyError:
            raise ForwardingError(f"cannot listen on {endpoint}: unknown socket {kind} "
                                  f"{value!r}") from None

    return (resolve(options.owner, "owner", lambda n: pwd.getpwnam(n).pw_uid),
            resolve(options.group, "group", lambda n: grp.getgrnam(n).gr_gid))


def _nobody_listens(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return False


def _remove_if_ours(path: str, created: tuple[int, int]) -> None:
    try:
        info = os.lstat(path)
        if (info.st_dev, info.st_ino) == created:
            os.unlink(path)
    except OSError:
        pass


def _describe(error: OSError | None) -> str:
    if error is None:
        return "no usable address"
    if error.errno == errno.EADDRINUSE:
        return "address already in use"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied ({error.strerror})"
    if error.errno == errno.EADDRNOTAVAIL:
        return "address not available on this machine"
    return error.strerror or str(error)
