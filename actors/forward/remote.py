"""Remote forwarding endpoints for the forwarder actor: SSH hosts and Docker containers.

``await connect_remote(remote, cache_directory=...)`` connects one remote (``remote`` is the
dict form of an endpoint URL: protocol ``ssh`` or ``docker``, user, host, port, environment)
and returns a ``RemoteSide`` with:

- ``dialer(endpoint) -> Dialer``: each call opens a connection to ``endpoint`` *as seen from
  the remote*. SSH: a direct-tcpip / direct-streamlocal channel on the SSH connection (what
  ``ssh -L`` does; no agent involved). Docker: the agent in the container dials, and the bytes
  travel multiplexed over its ``docker exec`` tunnel (``actors.forward.mux``).
- ``await listen(endpoint, options=None, reclaim=False) -> StreamListener``: listen on the
  remote (reverse forwarding). SSH, TCP: a tcpip-forward request (``ssh -R``) on exactly the
  address given. SSH, unix, and Docker: our agent listens on the remote (started over the same
  SSH connection / ``docker exec``), so the unix-socket ``options`` (``SocketOptions``:
  overwrite mode, owner, group, permission mode) are applied exactly as for a local listener,
  owner and group names being resolved on the remote; ``reclaim`` lets a restarted forwarder
  remove a stale socket nobody listens on. (sshd's streamlocal-forward cannot carry them: the
  request names only a path, and sshd makes the socket with its own ``StreamLocalBindMask``,
  0177 by default, owned by the login user, replacing an existing file only if
  ``StreamLocalBindUnlink yes``.) Connections arrive through a ``QueueListener``.
- ``await wait_lost() -> str``: completes with a reason when the connection to the remote ends.
- ``await close()``.

asyncssh is imported only when an SSH side is used (the daemon and local forwarders start
without it). Failure rules: connecting raises ``ForwardingError`` naming the remote and the cause; a listen
the remote refuses raises ``ForwardingError`` ("cannot listen on tcp:… on host: …"); a dial
failure raises ``DialError`` (counted by the relay, never fatal). Remote endpoint texts are
parsed with ``parse_remote_endpoint``: a unix path must be absolute (it names a path on the
remote, which this machine cannot resolve), at most 107 bytes.
"""

from __future__ import annotations

import asyncio
import os

from mutagen_actors.wire import forward_mux as fx

from .dialers import DialError
from .endpoints import Endpoint, ForwardingError, parse_endpoint
from .mux import Mux
from .streams import Dialer, QueueListener


LEAN_SSH = True  # the short SSH send paths below; bench/forward.py --ssh turns them off for a row
CHANNEL_WINDOW = 8 << 20  # what the remote may send before we acknowledge (asyncssh: 2 MiB)
WRITE_BUFFER = 2 << 20


def parse_remote_endpoint(text: str, *, listening: bool) -> Endpoint:
    """Parse an endpoint that lives on a remote (see the module rules)."""
    if text.startswith("unix:") and not text[5:].startswith("/"):
        raise ForwardingError(f"invalid forwarding endpoint {text!r}: a remote unix socket path "
                              "must be absolute")
    return parse_endpoint(text, listening=listening, cwd="/")


def describe_remote(remote: dict) -> str:
    user = f"{remote.get('user')}@" if remote.get("user") else ""
    if remote["protocol"] == "docker":
        return f"docker://{user}{remote['host']}"
    port = f":{remote['port']}" if remote.get("port") else ""
    return f"{user}{remote['host']}{port}"


class _Url:
    """The attribute shape the transports take (``supervisor.urls.Url``)."""

    def __init__(self, remote: dict):
        self.protocol = remote["protocol"]
        self.user = remote.get("user", "")
        self.host = remote["host"]
        self.port = int(remote.get("port", 0) or 0)
        self.path = ""
        self.environment = dict(remote.get("environment") or {})


async def connect_remote(remote: dict, *, cache_directory: str,
                         ssh_directory: str | None = None) -> "SshSide | AgentSide":
    from mutagen_actors.agent.transports import TransportError

    try:
        if remote["protocol"] == "ssh":
            from mutagen_actors.agent.transports.ssh import SshTransport

            transport = await SshTransport.connect(_Url(remote), ssh_directory=ssh_directory)
            return SshSide(transport, cache_directory)
        if remote["protocol"] == "docker":
            from mutagen_actors.agent.transports.docker import DockerTransport

            side = AgentSide(DockerTransport(_Url(remote)), where="in")
            await side.connect(cache_directory)
            return side
    except TransportError as error:
        raise ForwardingError(str(error)) from None
    raise ForwardingError(f"unknown remote protocol {remote['protocol']!r}")


# ---------------------------------------------------------------------------------------- SSH


class _CorkedTransport:
    """Write coalescing for an SSH connection's byte transport: asyncssh writes every packet
    (16-32 KiB of channel data) with its own ``send`` system call; this gathers the packets
    written during one event-loop turn and sends them in one call at the end of the turn
    (measured: about a third of the forwarder's CPU per byte was those calls). Order is kept;
    ``close``/``write_eof`` send what is gathered first, ``abort`` drops it."""

    def __init__(self, transport, loop):
        self._transport = transport
        self._loop = loop
        self._parts: list = []
        self._scheduled = False

    def write(self, data) -> None:
        self._parts.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._parts:
            data = b"".join(self._parts)
            self._parts.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._parts.clear()
        self._transport.abort()

    def __getattr__(self, name):
        return getattr(self._transport, name)


AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                "chacha20-poly1305@openssh.com")
_MSG_IGNORE = 2
_EMPTY_STRING = b"\0\0\0\0"


_GCM_TAG = 16


def _reuse_gcm_keys() -> None:
    """asyncssh's AES-GCM shim builds a new ``AESGCM(key)`` for every packet it seals or opens,
    then copies the sealed packet twice more to split off the tag (measured here: 7.5 us of
    a 32 us seal of a 32 KiB packet, about 0.25 s of CPU per GiB forwarded). Keep one
    ``AESGCM`` per cipher object (a rekey makes a new object with the new key, so the cache
    follows the keys) and split with one copy. Same bytes, same return shapes; applied to
    the class once per process, only if it has the shape this was written against (asyncssh
    2.17-2.24), else left alone."""
    try:
        from asyncssh.crypto import cipher as module
    except ImportError:  # pragma: no cover - asyncssh always has it
        return
    cls = getattr(module, "GCMCipher", None)
    aead_class = getattr(module, "AESGCM", None)
    invalid_tag = getattr(module, "InvalidTag", None)
    if cls is None or aead_class is None or invalid_tag is None \
            or getattr(cls, "_keys_reused", False) \
            or not all(hasattr(cls, name) for name in ("encrypt_and_sign", "verify_and_decrypt",
                                                         "_update_iv")):
        return

    def aead(self):
        sealer = self.__dict__.get("_sealer")
        if sealer is None:
            sealer = self.__dict__["_sealer"] = aead_class(self._key)
        return sealer

    def encrypt_and_sign(self, header: bytes, data: bytes):
        sealed = memoryview(aead(self).encrypt(self._iv, data, header))
        self._update_iv()
        return header + sealed[:-_GCM_TAG], sealed[-_GCM_TAG:].tobytes()

    def verify_and_decrypt(self, header: bytes, data: bytes, mac: bytes):
        try:
            opened = aead(self).decrypt(self._iv, data + mac, header)
        except invalid_tag:
            opened = None
        self._update_iv()
        return opened

    def seal_packet(self, header: bytes, data: bytes) -> bytes:
        """``encrypt_and_sign`` for a sender that writes ``header`` itself: the ciphertext and
        its tag as one buffer (what follows the header on the wire), no further copy."""
        sealed = aead(self).encrypt(self._iv, data, header)
        self._update_iv()
        return sealed

    cls.encrypt_and_sign = encrypt_and_sign
    cls.verify_and_decrypt = verify_and_decrypt
    cls.seal_packet = seal_packet
    cls._keys_reused = True


def _cork(connection) -> None:
    """Coalesce the connection's writes (``_CorkedTransport``) and, with an AEAD cipher, drop
    the empty IGNORE packet asyncssh puts before every packet it sends: that is RFC 4251
    9.3.1's countermeasure for CBC modes, meaningless with GCM or chacha20-poly1305, and it
    doubled the packets (and the per-packet Python work) of a forwarded stream. IGNORE
    packets are optional in the protocol: the peer just discards them."""
    if LEAN_SSH:
        _reuse_gcm_keys()
    transport = getattr(connection, "_transport", None)
    if transport is not None and hasattr(transport, "write") \
            and not isinstance(transport, _CorkedTransport):
        connection._transport = _CorkedTransport(transport, asyncio.get_running_loop())
    if connection.get_extra_info("send_cipher") in AEAD_CIPHERS:
        send_packet = connection.send_packet
        lean = _lean_channel_data(connection, send_packet) if LEAN_SSH else None

        def without_padding_ignores(pkttype, *args, **kwargs):
            if pkttype == _MSG_IGNORE and args == (_EMPTY_STRING,):
                return None
            if lean is not None and pkttype == _MSG_CHANNEL_DATA and lean(args, kwargs):
                return None
            return send_packet(pkttype, *args, **kwargs)

        without_padding_ignores.lean = lean
        connection.send_packet = without_padding_ignores


def lean_send_paths(connection) -> None:
    """The short send paths of ``_cork`` for any asyncssh client connection (also used by the
    sync tunnel, ``agent.remote_endpoint_actor``): coalesced writes, no IGNORE packets with an
    AEAD cipher, one ``AESGCM`` per key, CHANNEL_DATA framed with one copy. Applied once per
    connection; a second call does nothing."""
    if getattr(connection, "_mutagen_actors_lean", False):
        return
    _cork(connection)
    connection._mutagen_actors_lean = True


_MSG_CHANNEL_DATA = 94
_CONNECTION_STATE = ("_auth_complete", "_kex_complete", "_rekey_bytes_sent", "_rekey_bytes",
                     "_rekey_seconds", "_rekey_time", "_compressor", "_send_encryption",
                     "_send_enchdrlen", "_send_blocksize", "_send_seq", "_send")


def _lean_channel_data(connection, send_packet):
    """A shorter way for CHANNEL_DATA packets of an established connection (keys agreed,
    authenticated, no compression, no rekey due, packet logging off): asyncssh's
    ``send_packet`` copies the payload twice while framing it and formats a log line per
    packet even when nobody logs packets. This frames, pads, seals (``encrypt_packet``),
    counts (sequence number, rekey byte count) exactly as it does, with one copy and no log
    formatting. Returns ``lean(args, kwargs) -> bool`` (False: not handled, send the stock
    way), or None when the connection lacks the state this was written against (asyncssh
    2.17-2.24), so the stock path is used."""
    if not all(hasattr(connection, name) for name in _CONNECTION_STATE):
        return None
    import time

    c = connection

    def lean(args, kwargs) -> bool:
        """Send one CHANNEL_DATA packet the short way; False if it must go the stock way."""
        handler = kwargs.get("handler") or c
        if (len(kwargs) > 1 or not c._auth_complete or not c._kex_complete
                or c._compressor is not None or c._send_encryption is None
                or c._rekey_bytes_sent >= c._rekey_bytes
                or (c._rekey_seconds and time.monotonic() >= c._rekey_time)
                or getattr(getattr(handler, "logger", None), "_debug_level", 3) >= 3):
            return False
        length = 1 + sum(map(len, args))
        blocksize = c._send_blocksize
        padding = -(c._send_enchdrlen + length) % blocksize
        if padding < 4:
            padding += blocksize
        packet = b"".join((bytes((padding, _MSG_CHANNEL_DATA)), *args, os.urandom(padding)))
        size = len(packet)
        sequence = c._send_seq
        header = size.to_bytes(4, "big")
        seal = getattr(getattr(c._send_encryption, "_cipher", None), "seal_packet", None)
        if seal is not None:  # AES-GCM with its key kept: header, then ciphertext and tag
            c._send(header)  # (two writes to the corked transport: one copy when it joins)
            c._send(seal(header, packet))
        else:
            sealed, mac = c._send_encryption.encrypt_packet(sequence, header, packet)
            c._send(sealed + mac)
        c._send_seq = (sequence + 1) & 0xFFFFFFFF
        c._rekey_bytes_sent += size
        lean.packets += 1
        return True

    lean.packets = 0  # how many went the short way (tests check it is used)
    return lean


class SshSide:
    def __init__(self, transport, cache_directory: str = ""):
        self.transport = transport
        self.connection = transport.connection
        lean_send_paths(self.connection)
        self.description = transport.description
        self.cache_directory = cache_directory
        self.agent: AgentSide | None = None  # started for the first unix listener
        self._listeners: list = []

    def dialer(self, endpoint: Endpoint, timeout: float = 10.0) -> Dialer:
        import asyncssh

        async def dial():
            try:
                return await asyncio.wait_for(self._open(endpoint), timeout)
            except asyncio.TimeoutError:
                raise DialError(f"cannot connect to {endpoint} on {self.description}: timed out "
                                f"after {timeout:g} s") from None
            except asyncssh.ChannelOpenError as error:
                raise DialError(f"cannot connect to {endpoint} on {self.description}: "
                                f"{_reason(error)}") from None
            except (asyncssh.Error, OSError) as error:
                raise DialError(f"cannot connect to {endpoint} on {self.description}: "
                                f"{error}") from None

        return dial

    async def _open(self, endpoint: Endpoint):
        if endpoint.is_unix:
            pair = await self.connection.open_unix_connection(endpoint.path, encoding=None,
                                                              window=CHANNEL_WINDOW)
        else:
            pair = await self.connection.open_connection(endpoint.host, endpoint.port,
                                                         encoding=None, window=CHANNEL_WINDOW)
        return _buffered(pair)

    async def listen(self, endpoint: Endpoint, options=None, reclaim: bool = False):
        if endpoint.is_unix:
            if self.agent is None:
                agent = AgentSide(self.transport, where="on")
                await agent.connect(self.cache_directory)
                self.agent = agent
            return await self.agent.listen(endpoint, options, reclaim)
        import asyncssh

        queue: QueueListener

        def handler_factory(*_origin):
            def handler(reader, writer):
                queue.deliver(*_buffered((reader, writer)))
            return handler

        try:
            listener = await self.connection.start_server(handler_factory, endpoint.host,
                                                          endpoint.port, encoding=None)
        except (asyncssh.Error, asyncssh.ChannelListenError, OSError) as error:
            if await self._in_use(endpoint):
                raise ForwardingError(f"cannot listen on {endpoint} on {self.description}: "
                                      "address already in use") from None
            raise ForwardingError(
                f"cannot listen on {endpoint} on {self.description}: the SSH server refused "
                f"({_reason(error)}; the address may be taken, or forwarding not allowed)"
            ) from None
        where = Endpoint(endpoint.protocol, endpoint.host, listener.get_port())
        queue = QueueListener(f"{where} on {self.description}", on_close=listener.close)
        self._listeners.append(listener)
        return queue

    async def _in_use(self, endpoint: Endpoint) -> bool:
        """Whether something on the remote accepts connections at ``endpoint`` (why a listen
        was refused, as far as one can tell through SSH)."""
        import asyncssh

        try:
            _reader, writer = await asyncio.wait_for(self._open(endpoint), 3)
        except (asyncio.TimeoutError, asyncssh.Error, OSError):
            return False
        writer.close()
        return True

    async def wait_lost(self) -> str:
        """The SSH connection ended, or the agent started on it (for unix listeners) did."""
        closed = asyncio.ensure_future(self.connection.wait_closed())
        waits = {closed}
        if self.agent is not None:
            waits.add(asyncio.ensure_future(self.agent.wait_lost()))
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if closed in done:
            return f"the SSH connection to {self.description} was lost"
        return next(iter(done)).result()

    async def close(self) -> None:
        for listener in self._listeners:
            listener.close()
        if self.agent is not None:
            try:
                await asyncio.wait_for(self.agent.close(), 2)
            except Exception:  # noqa: BLE001 - the connection closes below anyway
                pass
        await self.transport.close()


def _buffered(pair):
    """Let a channel buffer ``WRITE_BUFFER`` bytes before ``drain`` waits (asyncssh's default
    64 KiB makes every 256 KiB relay write wait for the channel to empty: no pipelining)."""
    pair[1].channel.set_write_buffer_limits(high=WRITE_BUFFER)
    return pair


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", "") or str(error) or type(error).__name__
    return reason.strip().rstrip(".").lower() if reason[:1].isupper() else reason


# ------------------------------------------------------------------------------ agent (Docker)


class AgentSide:
    """Our agent on a remote (in a container, or on an SSH host for unix listeners), with
    forwarded connections multiplexed over its tunnel. ``where`` is how messages place the
    remote ("in" a container, "on" a host)."""

    def __init__(self, transport, where: str = "in"):
        self.transport = transport
        self.description = transport.description
        self.where = f"{where} {transport.description}"
        self.agent = None
        self.mux: Mux | None = None
        self._waiting: dict[int, asyncio.Future] = {}
        self._listeners: dict[int, QueueListener] = {}
        self._listener_ids = iter(range(2, 1 << 31, 2))

    async def connect(self, cache_directory: str) -> None:
        """Start (installing if needed) the agent; ``ForwardingError`` naming the remote."""
        from mutagen_actors.agent.install import AgentError, connect_agent

        try:
            self.agent = await connect_agent(self.transport, self._on_data,
                                             cache_directory=cache_directory)
        except AgentError as error:
            raise ForwardingError(f"cannot start the agent {self.where}: {error}") from None
        tunnel = self.agent.tunnel
        self.mux = Mux(lambda payload: tunnel.send(fx.ROUTE, payload), odd=False)

    async def _on_data(self, route: bytes, payload: bytes) -> None:
        if route != fx.ROUTE or self.mux is None:
            return
        op, identifier, body = fx.decode(payload)
        if op in (fx.OPENED, fx.FAILED, fx.LISTENING, fx.LISTEN_FAILED):
            waiter = self._waiting.pop(identifier, None)
            if waiter is not None and not waiter.done():
                waiter.set_result((op, bytes(body).decode(errors="replace")))
        elif op == fx.ACCEPT:
            listener = self._listeners.get(fx.body_u32(body))
            stream = self.mux.open(identifier)
            if listener is None:
                stream.close()
            else:
                listener.deliver(stream, stream)
        else:
            self.mux.on_stream_frame(op, identifier, body)

    async def _ask(self, op: int, identifier: int, body: str | bytes, timeout: float):
        waiter = self._waiting[identifier] = asyncio.get_running_loop().create_future()
        if isinstance(body, str):
            body = body.encode()
        await self.agent.tunnel.send(fx.ROUTE, fx.encode(op, identifier, body))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        finally:
            self._waiting.pop(identifier, None)

    def dialer(self, endpoint: Endpoint, timeout: float = 10.0) -> Dialer:
        async def dial():
            identifier = self.mux.new_id()
            stream = self.mux.open(identifier)
            try:
                op, text = await self._ask(fx.DIAL, identifier, str(endpoint), timeout)
            except asyncio.TimeoutError:
                stream.close()
                raise DialError(f"cannot connect to {endpoint} {self.where}: timed "
                                f"out after {timeout:g} s") from None
            except ConnectionError as error:
                stream._gone()
                raise DialError(f"cannot connect to {endpoint} {self.where}: "
                                f"{error}") from None
            if op != fx.OPENED:
                stream._gone()
                raise DialError(f"{text} {self.where}")
            return stream, stream

        return dial

    async def listen(self, endpoint: Endpoint, options=None,
                     reclaim: bool = False) -> QueueListener:
        identifier = next(self._listener_ids)
        given = None
        if endpoint.is_unix and (options is not None or reclaim):
            given = {"reclaim": reclaim}
            if options is not None:
                given.update(overwrite_mode=options.overwrite_mode.value, owner=options.owner,
                             group=options.group, permission_mode=options.permission_mode)
        try:
            op, text = await self._ask(fx.LISTEN, identifier,
                                       fx.listen_body(str(endpoint), given), 15.0)
        except (asyncio.TimeoutError, ConnectionError) as error:
            raise ForwardingError(f"cannot listen on {endpoint} {self.where}: "
                                  f"{error or 'no answer from the agent'}") from None
        if op != fx.LISTENING:
            raise ForwardingError(f"{text} {self.where}")

        def stop():
            self._listeners.pop(identifier, None)
            if self.agent is not None and not self.agent.tunnel.is_closed:
                self.mux.spawn(self.mux.send(fx.encode(fx.UNLISTEN, identifier)))

        listener = self._listeners[identifier] = QueueListener(f"{text} {self.where}",
                                                               on_close=stop)
        return listener

    async def wait_lost(self) -> str:
        closed = await self.agent.tunnel.wait_closed()
        if self.mux is not None:
            self.mux.lost(str(closed))
        return f"the agent tunnel {self.where} was lost: {closed}"

    async def close(self) -> None:
        if self.agent is not None:
            await self.agent.close("forwarding stopped")
        if self.mux is not None:
            self.mux.lost("closed")



DockerSide = AgentSide  # the name it had when only containers ran an agent for forwarding
