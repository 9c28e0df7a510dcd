"""``FrameDecoder`` assembling a large DATA body in place: bytes fed are copied once into a
body of the announced size; wherever the pieces end, the frames, their order and their
on-stream sizes are those of the stream; other frames keep the pieces path."""

from __future__ import annotations

import os

import pytest

from mutagen_actors.wire import tunnel as t

BIG = t.data_body(b"r", os.urandom(300_000))
HUGE_PING = os.urandom(t.FrameDecoder.FILL_FROM + 10)  # large, but not DATA: pieces path
FRAMES = [t.encode_frame(t.DATA, BIG), t.encode_frame(t.PING, b"n" * 8),
          t.encode_frame(t.DATA, t.data_body(b"", b"small")), t.encode_frame(t.DATA, BIG),
          t.encode_frame(t.PONG, HUGE_PING), t.encode_frame(t.DATA, BIG)]
STREAM = b"".join(FRAMES)
EXPECTED = [(t.DATA, BIG), (t.PING, b"n" * 8), (t.DATA, t.data_body(b"", b"small")),
            (t.DATA, BIG), (t.PONG, HUGE_PING), (t.DATA, BIG)]


def _decode(stream: bytes, feed_size: int):
    decoder = t.FrameDecoder(compression=False)
    frames, sizes = [], []
    for at in range(0, len(stream), feed_size):
        frames += decoder.feed(stream[at:at + feed_size])
        sizes += decoder.sizes
    return frames, sizes, decoder


@pytest.mark.parametrize("feed_size", [1, 7, 4096, 32 * 1024, 300_005, 1 << 20])
def test_any_split_gives_the_stream_s_frames(feed_size):
    frames, sizes, decoder = _decode(STREAM, feed_size)
    assert frames == EXPECTED
    assert sizes == [len(frame) for frame in FRAMES]
    assert decoder.feed(b"") == []


def test_a_large_data_body_is_a_bytearray_of_its_size_and_other_bodies_are_bytes():
    frames, _, _ = _decode(STREAM, 32 * 1024)
    assert [type(body) for _, body in frames] == [bytearray, bytes, bytes, bytearray, bytes,
                                                  bytearray]


def test_a_body_is_allocated_only_within_the_fill_bounds():
    decoder = t.FrameDecoder(compression=False)
    too_big = t.FrameDecoder.FILL_MAX + 1
    decoder.feed(bytes([t.DATA]) + too_big.to_bytes(4, "big") + b"x" * 10)
    assert decoder._body is None  # kept as pieces until its bytes arrive
    small = t.FrameDecoder(compression=False)
    small.feed(t.encode_frame(t.DATA, b"y" * (t.FrameDecoder.FILL_FROM - 1))[:100])
    assert small._body is None
    big = t.FrameDecoder(compression=False)
    big.feed(FRAMES[0][:1000])
    assert big._body is not None and len(big._body) == len(BIG)
