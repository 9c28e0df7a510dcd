"""The blocking client of the control socket (``wire.stream``): request/reply with a deadline per
call, for the CLI. It imports no asyncio and not the whole schema, so a CLI command starts fast:
frames are those of ``wire.codec`` (``wire.framing``'s one implementation), decoded with the
control subset of the schema (``wire.control_schema``); a frame that subset rejects is decoded
again with ``wire.codec`` (imported then), which accepts a message of any other domain and words
every error exactly as the server does.

``connect`` raises ``FileNotFoundError``/``ConnectionRefusedError`` when no daemon listens,
``PermissionError`` when the socket is not ours, ``RequestTimeout`` when the connect itself does
not finish in time. ``request`` returns the reply body, raises ``RemoteError`` for an
``ErrorReply``, ``RequestTimeout`` past the deadline, ``ConnectionError`` if the daemon went away
and ``ProtocolError`` for a reply that is not a valid frame (e.g. another version).
"""

from __future__ import annotations

import itertools
import socket
import time

from .control_schema import ControlEnvelope
from .errors import ProtocolError, RemoteError, RequestTimeout
from .framing import HEADER, FrameCodec, frame_size, pack
from .messages.base import ErrorReply
from .messages.control import PromptAnswer, PromptQuestion
from .version import MAX_FRAME_SIZE

_control = FrameCodec(ControlEnvelope)
encode = _control.encode  # the same bytes as ``wire.codec.encode`` (the encoding is the body's)


def decode(frame, *, max_size: int = MAX_FRAME_SIZE):
    """``wire.codec.decode(frame)``, without importing the whole schema for control messages."""
    try:
        return _control.decode(frame, max_size=max_size)
    except ProtocolError:
        from . import codec  # another domain's message, or an error to word: the whole schema

        return codec.decode(frame, max_size=max_size)


class StreamClient:
    """Blocking request/reply client with per-call deadlines (see the module docstring)."""

    def __init__(self, path: str):
        self.path = path
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)

    def connect(self, timeout: float) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except socket.timeout:
            sock.close()
            raise RequestTimeout(f"connect did not finish within {timeout:g} s") from None
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests use this to send malformed frames)."""
        assert self._sock is not None
        self._sock.sendall(data)

    def request(self, body, timeout: float, on_question=None):
        """The reply to ``body`` (see the module docstring). A ``PromptQuestion`` the daemon sends
        meanwhile is answered with ``on_question(question) -> PromptAnswer`` (without one:
        ``PromptAnswer(None, "no terminal")``); the time spent answering does not count
        against ``timeout``."""
        assert self._sock is not None, "connect first"
        request_id = next(self._ids)
        deadline = time.monotonic() + timeout
        self._sock.settimeout(timeout)
        try:
            self._sock.sendall(pack(encode(body, id=request_id)))
        except socket.timeout:
            raise RequestTimeout(f"no answer within {timeout:g} s") from None
        while True:
            envelope = decode(self._read_frame(deadline, timeout), max_size=MAX_FRAME_SIZE)
            if envelope.reply_to == 0 and envelope.id and isinstance(envelope.body, PromptQuestion):
                started = time.monotonic()
                reply = (on_question(envelope.body) if on_question is not None
                         else PromptAnswer(None, "no terminal"))
                deadline += time.monotonic() - started
                self._sock.settimeout(max(deadline - time.monotonic(), 0.05))
                try:
                    self._sock.sendall(pack(encode(reply, reply_to=envelope.id)))
                except socket.timeout:
                    raise RequestTimeout(f"no answer within {timeout:g} s") from None
                continue
            if envelope.reply_to not in (request_id, 0):
                continue  # a late answer to an earlier request that timed out
            if isinstance(envelope.body, ErrorReply):
                raise RemoteError(envelope.body.code, envelope.body.message)
            return envelope.body

    def read_reply(self, timeout: float):
        """Read one frame and decode it (tests: the answer to raw bytes)."""
        return decode(self._read_frame(time.monotonic() + timeout, timeout))

    def _read_frame(self, deadline: float, timeout: float) -> bytes:
        size = frame_size(self._read_exactly(HEADER.size, deadline, timeout), MAX_FRAME_SIZE)
        return self._read_exactly(size, deadline, timeout)

    def _read_exactly(self, size: int, deadline: float, timeout: float) -> bytes:
        chunks = []
        while size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeout(f"no answer within {timeout:g} s")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(min(size, 1 << 20))
            except socket.timeout:
                raise RequestTimeout(f"no answer within {timeout:g} s") from None
            if not chunk:
                raise ConnectionResetError("the daemon closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
