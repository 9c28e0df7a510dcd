"""Length-prefixed codec frames over a unix stream socket: the CLI <-> daemon control socket.

Why not ZeroMQ here: a plain unix socket tells the client at once whether a daemon is there
(``ECONNREFUSED``/``ENOENT`` mean "start one"; ZeroMQ's connect never fails), lets the server read
the peer's uid (``SO_PEERCRED``), and keeps zmq out of the CLI's import time.

Framing: a 4-byte big-endian length, then one codec frame (``wire.codec``). The server:

- binds the socket under a temporary name, sets it 0600 and renames it into place (a stale socket
  left by a killed daemon is replaced atomically; the caller must hold the daemon lock);
- refuses a peer whose uid differs from its own (logged);
- a frame that fails to decode is logged as a protocol error and answered with
  ``ErrorReply("protocol", ...)`` (reply_to 0); the connection stays usable;
- a length above ``max_frame`` is logged and the connection is closed (nothing is read);
- every well-formed request is answered through ``handling.answer``;
- ``EnablePrompting`` is answered here (``Ok``): it marks the connection as one whose user can
  answer questions. While a later request of that connection is being handled, the handler can
  ask through ``current_peer().ask(question, timeout)``: a ``PromptQuestion`` frame goes to the
  client with a server-side id, and the client's ``PromptAnswer`` (``reply_to`` = that id) is
  read back (one question at a time per connection; the connection is otherwise idle then, as
  the client is waiting for its reply). ``ask`` raises ``asyncio.TimeoutError`` past its deadline
  and ``ConnectionError`` when the client went away.

The client (``StreamClient``) is blocking with a deadline per call, for the CLI; it lives in
``wire.stream_client`` (no asyncio: the CLI starts faster) and is re-exported here. Both halves share
the framing of ``wire.framing``.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import os
import socket
import struct

from . import codec
from .errors import ProtocolError
from .framing import HEADER as _HEADER
from .framing import pack
from .handling import Handler, answer
from .messages.base import ErrorReply, Ok
from .messages.control import EnablePrompting, PromptAnswer, PromptQuestion
from .stream_client import StreamClient  # noqa: F401  (re-exported: the client half)
CONTROL_MAX_FRAME = 4 * 1024 * 1024  # requests the daemon accepts on its control socket



def _log():
    # Imported lazily: the CLI uses only the client half and should not pay for structlog.
    import structlog

    return structlog.get_logger("wire.stream")


# --------------------------------------------------------------------------------------- server


class Peer:
    """The client at the other end of one control connection, as a request handler sees it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_frame: int):
        self.prompting = False  # the client sent EnablePrompting
        self.handling = False  # a request of this client is being handled (it waits)
        self._reader = reader
        self._writer = writer
        self._max_frame = max_frame
        self._ids = itertools.count(1 << 32)  # far from the client's own ids
        self._lock = asyncio.Lock()
        self.gone = False

    async def ask(self, question: PromptQuestion, timeout: float) -> PromptAnswer:
        """Send ``question`` and wait for the client's answer (see the module docstring)."""
        if not self.prompting or self.gone or not self.handling:
            raise ConnectionError("nobody can answer on this connection")
        async with self._lock:
            if self.gone or not self.handling:
                raise ConnectionError("nobody can answer on this connection")
            question_id = next(self._ids)
            try:
                self._writer.write(pack(codec.encode(question, id=question_id)))
                await self._writer.drain()
                return await asyncio.wait_for(self._read_answer(question_id), timeout)
            except (ConnectionError, asyncio.IncompleteReadError, ProtocolError) as error:
                self.gone = True
                raise ConnectionError(f"the command waiting for the answer went away: {error}"
                                      ) from None

    async def settled(self) -> None:
        """Wait until no question is open (its answer is read before anything else)."""
        async with self._lock:
            pass

    async def _read_answer(self, question_id: int) -> PromptAnswer:
        while True:
            (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
            if size > self._max_frame:
                raise ProtocolError(f"oversized frame: {size} bytes (limit {self._max_frame})")
            envelope = codec.decode(await self._reader.readexactly(size), max_size=self._max_frame)
            if envelope.reply_to == question_id and isinstance(envelope.body, PromptAnswer):
                return envelope.body
            _log().warning("unexpected frame while waiting for a prompt answer",
                           message_type=type(envelope.body).__name__)


_current_peer: contextvars.ContextVar[Peer | None] = contextvars.ContextVar("peer", default=None)


def current_peer() -> Peer | None:
    """The client whose request is being handled (None outside a control connection)."""
    return _current_peer.get()


class StreamServer:
    """Serve ``handler`` on a unix socket at ``path`` (see the module docstring)."""

    def __init__(self, path: str, handler: Handler, *, max_frame: int = CONTROL_MAX_FRAME):
        self.path = path
        self.handler = handler
        self.max_frame = max_frame
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task] = set()

    async def start(self) -> None:
        temporary = f"{self.path}.{os.getpid()}.tmp"
        if os.path.lexists(temporary):
            os.unlink(temporary)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(temporary)
            os.chmod(temporary, 0o600)
            os.rename(temporary, self.path)
            sock.listen(64)
        except BaseException:
            sock.close()
            raise
        self._server = await asyncio.start_unix_server(self._serve, sock=sock)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            self._server = None
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # only ``close`` cancels these tasks: the server is going away
        finally:
            self._connections.discard(task)
            writer.close()

    async def _converse(self, reader, writer) -> None:
        log = _log()
        sock = writer.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            log.warning("refused control connection from another user", peer_uid=uid, peer_pid=pid)
            return
        peer = Peer(reader, writer, self.max_frame)
        _current_peer.set(peer)  # this task's context: the handlers it awaits see it
        while True:
            header = await reader.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            if size > self.max_frame:
                log.warning(
                    "protocol error on control socket",
                    error=f"oversized frame: {size} bytes (limit {self.max_frame})",
                    peer_pid=pid,
                )
                return
            frame = await reader.readexactly(size)
            try:
                envelope = codec.decode(frame, max_size=self.max_frame)
            except ProtocolError as error:
                log.warning("protocol error on control socket", error=str(error), peer_pid=pid)
                writer.write(pack(codec.encode(ErrorReply("protocol", str(error)))))
                await writer.drain()
                continue
            if isinstance(envelope.body, EnablePrompting):
                peer.prompting = True
                reply = Ok()
            else:
                peer.handling = True
                try:
                    reply = await answer(self.handler, envelope.body, log)
                finally:
                    peer.handling = False
                await peer.settled()  # a question asked meanwhile is answered first
            if peer.gone:
                return  # the client left while its request was handled (it broke off a prompt)
            writer.write(pack(codec.encode(reply, reply_to=envelope.id)))
            await writer.drain()
