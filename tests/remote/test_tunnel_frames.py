"""Tunnel framing (pure): round trips, compression only where it pays, and refusals."""

from __future__ import annotations

import os
import struct

import pytest

from mutagen_actors.wire import tunnel as t
from mutagen_actors.wire.errors import ProtocolError

TEXT = b"def scan(root):\n    return entries\n" * 200  # compresses well
NOISE = os.urandom(4096)  # does not


@pytest.mark.parametrize("kind, body, compress, flagged", [
    (t.DATA, t.data_body(b"id", b"x"), True, False),  # below the threshold
    (t.DATA, t.data_body(b"id", TEXT), True, True),
    (t.DATA, t.data_body(b"id", TEXT), False, False),  # not agreed
    (t.DATA, t.data_body(b"", NOISE), True, False),  # would not shrink
    (t.PING, b"12345678", True, False),
    (t.PONG, b"12345678", False, False),
    (t.CLOSE, "bye: reason".encode(), False, False),
    (t.DATA, t.data_body(b"r" * 255, b""), False, False),
])
def test_round_trip(kind, body, compress, flagged):
    frame = t.encode_frame(kind, body, compress=compress)
    assert bool(frame[0] & t.COMPRESSED) is flagged
    if flagged:
        assert len(frame) < len(body)
    decoder = t.FrameDecoder(compression=compress)
    assert decoder.feed(frame) == [(kind, body)]


def test_frames_split_anywhere_and_batched():
    frames = [t.encode_frame(t.DATA, t.data_body(b"a", TEXT), compress=True),
              t.encode_frame(t.PING, b"n" * 8), t.encode_frame(t.DATA, t.data_body(b"", b"z"))]
    stream = b"".join(frames)
    decoder = t.FrameDecoder(compression=True)
    out = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i:i + 1])
    assert out == [(t.DATA, t.data_body(b"a", TEXT)), (t.PING, b"n" * 8),
                   (t.DATA, t.data_body(b"", b"z"))]
    assert t.FrameDecoder(compression=True).feed(stream) == out


@pytest.mark.parametrize("route, payload", [(b"", b""), (b"peer", b"frame"), (b"\x00" * 5, TEXT)])
def test_split_data(route, payload):
    assert t.split_data(t.data_body(route, payload)) == (route, payload)


@pytest.mark.parametrize("raw, compression, message", [
    (struct.pack(">BI", 9, 0), False, "unknown tunnel frame type 0x09"),
    (struct.pack(">BI", t.DATA | 0x40, 0), False, "unknown tunnel frame type 0x41"),
    (struct.pack(">BI", t.DATA, t.MAX_BODY + 1), False, "oversized tunnel frame"),
    (t.encode_frame(t.DATA, t.data_body(b"", TEXT), compress=True), False,
     "compression was not agreed"),
    (struct.pack(">BI", t.DATA | t.COMPRESSED, 8) + struct.pack("<I", 100) + b"\xff" * 4, True,
     "does not decompress"),
    (struct.pack(">BI", t.DATA | t.COMPRESSED, 8) + struct.pack("<I", 1 << 31) + b"\xff" * 4, True,
     "invalid size"),
])
def test_decoder_refuses(raw, compression, message):
    with pytest.raises(ProtocolError, match=message):
        t.FrameDecoder(compression=compression).feed(raw)


@pytest.mark.parametrize("body", [b"", b"\x05abc"])
def test_split_data_refuses_overrun(body):
    with pytest.raises(ProtocolError):
        t.split_data(body)


def test_route_longer_than_255_bytes_is_refused():
    with pytest.raises(ValueError):
        t.data_body(b"r" * 256, b"")


@pytest.mark.parametrize("body, flagged", [
    (os.urandom(1 << 20), False),  # random: sampled, sent as it is
    (TEXT * 200, True),
    (os.urandom(1 << 19) + TEXT * 300, True),  # mostly text after a random head
])
def test_large_bodies_are_sampled_before_compressing(body, flagged):
    frame = t.encode_frame(t.DATA, body, compress=True)
    assert bool(frame[0] & t.COMPRESSED) is flagged
    assert t.FrameDecoder(compression=True).feed(frame) == [(t.DATA, body)]


# 120 KiB that lz4 shrinks to about two thirds: still above JOIN_BELOW once compressed.
HALF_REPEATED = b"".join(piece + piece[:10240] for piece in (os.urandom(20480) for _ in range(4)))


@pytest.mark.parametrize("body, compress, buffers", [
    (b"x" * 10, False, 1),                     # small: header and body in one write
    (TEXT, True, 1),                           # compressed, still small
    (os.urandom(t.JOIN_BELOW), False, 2),      # large: the payload is not copied
    (HALF_REPEATED, True, 2),                  # compresses, but the block stays large
])
def test_small_frames_are_one_write(body, compress, buffers):
    parts = t.frame_parts(t.DATA, body, compress=compress, prefix=b"\x01r")
    assert len(parts) == buffers
    assert bool(parts[0][0] & t.COMPRESSED) is (compress and len(b"".join(parts)) < len(body))
    decoded = t.FrameDecoder(compression=compress).feed(b"".join(parts))
    assert decoded == [(t.DATA, b"\x01r" + body)]
