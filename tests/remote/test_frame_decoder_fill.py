"""``FrameDecoder`` assembling a large DATA body in place: bytes fed are copied once into a
body of the announced size, a reader may fill the rest straight in (``into`` / ``filled``), and
whatever the mix of the two and wherever the reads end, the frames, their order and their
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


def _decode(stream: bytes, feed_size: int, fill_size: int, fill: bool):
    """Feed ``stream`` in ``feed_size`` pieces, or, while a body is being filled and ``fill``
    is set, read ``fill_size`` bytes straight into it."""
    decoder = t.FrameDecoder(compression=False)
    frames, sizes, at = [], [], 0
    while at < len(stream):
        space = decoder.into() if fill else None
        if space is not None:
            count = min(fill_size, len(space), len(stream) - at)
            space[:count] = stream[at:at + count]
            del space
            frames += decoder.filled(count)
        else:
            count = feed_size
            frames += decoder.feed(stream[at:at + count])
        sizes += decoder.sizes
        at += count
    return frames, sizes, decoder


@pytest.mark.parametrize("feed_size", [1, 7, 4096, 32 * 1024, 1 << 20])
@pytest.mark.parametrize("fill_size, fill", [(0, False), (1, True), (5000, True),
                                             (32 * 1024, True), (1 << 20, True)])
def test_any_mix_of_feeds_and_fills_gives_the_stream_s_frames(feed_size, fill_size, fill):
    if fill and fill_size == 0:
        pytest.skip("nothing to fill with")
    frames, sizes, decoder = _decode(STREAM, feed_size, fill_size, fill)
    assert frames == EXPECTED
    assert sizes == [len(frame) for frame in FRAMES]
    assert decoder.into() is None and decoder.feed(b"") == []


def test_a_large_data_body_is_a_bytearray_of_its_size_and_other_bodies_are_bytes():
    frames, _, _ = _decode(STREAM, 32 * 1024, 32 * 1024, True)
    assert [type(body) for _, body in frames] == [bytearray, bytes, bytes, bytearray, bytes,
                                                  bytearray]


def test_a_body_is_allocated_only_within_the_fill_bounds():
    decoder = t.FrameDecoder(compression=False)
    too_big = t.FrameDecoder.FILL_MAX + 1
    decoder.feed(bytes([t.DATA]) + too_big.to_bytes(4, "big") + b"x" * 10)
    assert decoder.into() is None  # kept as pieces until its bytes arrive
    small = t.FrameDecoder(compression=False)
    small.feed(t.encode_frame(t.DATA, b"y" * (t.FrameDecoder.FILL_FROM - 1))[:100])
    assert small.into() is None


def test_filled_refuses_what_was_not_asked():
    decoder = t.FrameDecoder(compression=False)
    with pytest.raises(ValueError):
        decoder.filled(1)
    decoder.feed(FRAMES[0][:1000])
    space = decoder.into()
    with pytest.raises(ValueError):
        decoder.filled(len(space) + 1)
