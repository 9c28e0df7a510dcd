"""Forwarded connections multiplexed over an agent tunnel (pure framing, no I/O).

Used for Docker forwarding endpoints: the daemon side (``actors.forward.mux``) and the agent
(``agent.serve_forward``) exchange these frames as tunnel DATA payloads on the reserved route
``ROUTE`` (the agent's request server never sees them). One frame::

    op (1 byte) + id (u32, big-endian) + body

``id`` names a connection (or, for LISTEN/LISTENING/LISTEN_FAILED/UNLISTEN, a listener).
Connection ids opened by the daemon (DIAL) are even, those opened by the agent (ACCEPT) odd, so
the two ends never pick the same id.

- DIAL id body=endpoint text (daemon -> agent): dial it in the remote; answered by OPENED id
  or FAILED id body=one-line reason.
- LISTEN id body=``listen_body(endpoint, options)`` (daemon -> agent): listen in the remote;
  answered by LISTENING id body=address listened on, or LISTEN_FAILED id body=reason.
  UNLISTEN id stops it. The body is the endpoint text, optionally followed (after a NUL byte,
  which no endpoint contains) by the unix-socket options ``overwrite_mode``, ``owner``,
  ``group``, ``permission_mode`` (octal) and ``reclaim`` ("1": a stale socket nobody listens
  on may be removed), NUL-separated; a bare endpoint means the defaults.
- ACCEPT id body=listener id (u32) (agent -> daemon): a new connection of that listener.
- DATA id body=bytes; EOF id (half-close: no more DATA from this side); CLOSE id (the
  connection is gone both ways, body=optional reason).
- ACK id body=u32 n: n bytes of DATA for ``id`` were written out by the receiver. A sender
  keeps at most ``WINDOW`` unacknowledged bytes per connection (flow control: a slow reader
  never makes the other side buffer more than that, and never stalls other connections).

Failure rule: ``decode`` raises ``ProtocolError`` for a frame that is too short or has an
unknown op.
"""

from __future__ import annotations

import struct

from .errors import ProtocolError

ROUTE = b"\x00forward"
DIAL, OPENED, FAILED, LISTEN, LISTENING, LISTEN_FAILED, UNLISTEN, ACCEPT, DATA, EOF, CLOSE, \
    ACK = range(1, 13)
OPS = {DIAL: "DIAL", OPENED: "OPENED", FAILED: "FAILED", LISTEN: "LISTEN",
       LISTENING: "LISTENING", LISTEN_FAILED: "LISTEN_FAILED", UNLISTEN: "UNLISTEN",
       ACCEPT: "ACCEPT", DATA: "DATA", EOF: "EOF", CLOSE: "CLOSE", ACK: "ACK"}
WINDOW = 1 << 20
CHUNK = 128 * 1024
_HEAD = struct.Struct(">BI")
_U32 = struct.Struct(">I")


def encode(op: int, identifier: int, body: bytes = b"") -> bytes:
    return _HEAD.pack(op, identifier) + bytes(body)


def encode_u32(op: int, identifier: int, value: int) -> bytes:
    return _HEAD.pack(op, identifier) + _U32.pack(value)


def decode(payload) -> tuple[int, int, memoryview]:
    """(op, id, body) of one frame."""
    view = memoryview(payload)
    if len(view) < _HEAD.size:
        raise ProtocolError(f"forwarding frame of {len(view)} bytes is too short")
    op, identifier = _HEAD.unpack_from(view)
    if op not in OPS:
        raise ProtocolError(f"unknown forwarding frame op {op}")
    return op, identifier, view[_HEAD.size:]


LISTEN_FIELDS = ("overwrite_mode", "owner", "group", "permission_mode", "reclaim")


def listen_body(endpoint: str, options: dict | None = None) -> bytes:
    """A LISTEN body: ``endpoint`` and, if given, the unix-socket ``options`` (keys of
    ``LISTEN_FIELDS``; ``permission_mode`` an int, ``reclaim`` a bool)."""
    if not options:
        return endpoint.encode()
    values = [str(options.get("overwrite_mode", "") or ""), str(options.get("owner", "") or ""),
              str(options.get("group", "") or ""),
              format(int(options.get("permission_mode", 0) or 0), "o"),
              "1" if options.get("reclaim") else ""]
    if any("\0" in value for value in values) or "\0" in endpoint:
        raise ValueError("a LISTEN field contains a NUL byte")
    return "\0".join([endpoint, *values]).encode()


def parse_listen_body(body) -> tuple[str, dict | None]:
    """(endpoint text, options or None) of a LISTEN body; ``ProtocolError`` if malformed."""
    try:
        parts = bytes(body).decode().split("\0")
    except UnicodeDecodeError:
        raise ProtocolError("LISTEN body is not UTF-8") from None
    if len(parts) == 1:
        return parts[0], None
    if len(parts) != 1 + len(LISTEN_FIELDS):
        raise ProtocolError(f"LISTEN body has {len(parts) - 1} option fields, expected "
                            f"{len(LISTEN_FIELDS)}")
    overwrite, owner, group, mode, reclaim = parts[1:]
    try:
        permission_mode = int(mode, 8) if mode else 0
    except ValueError:
        raise ProtocolError(f"LISTEN permission mode {mode!r} is not octal") from None
    return parts[0], {"overwrite_mode": overwrite, "owner": owner, "group": group,
                      "permission_mode": permission_mode, "reclaim": reclaim == "1"}


def body_u32(body) -> int:
    if len(body) != _U32.size:
        raise ProtocolError(f"forwarding frame body of {len(body)} bytes, expected 4")
    return _U32.unpack(body)[0]
