"""``FrameDecoder`` fed a large frame in many small pieces (how an SSH channel delivers it): the
same frames and on-stream sizes whatever the split, pieces joined once per frame, a bad header
refused as soon as it is complete, and buffers the caller reuses after ``feed`` are not kept."""

from __future__ import annotations

import os
import struct

import pytest

from mutagen_actors.wire import tunnel as t
from mutagen_actors.wire.errors import ProtocolError

BIG = t.data_body(b"r", os.urandom(300_000))
FRAMES = [t.encode_frame(t.DATA, BIG), t.encode_frame(t.PING, b"n" * 8),
          t.encode_frame(t.DATA, t.data_body(b"", b"small"))]
STREAM = b"".join(FRAMES)
EXPECTED = [(t.DATA, BIG), (t.PING, b"n" * 8), (t.DATA, t.data_body(b"", b"small"))]


@pytest.mark.parametrize("piece", [1, 3, 5, 4096, 32 * 1024, 299_999, 300_006, len(STREAM)])
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_any_split_gives_the_same_frames_and_sizes(piece, kind):
    decoder = t.FrameDecoder(compression=False)
    frames, sizes = [], []
    for at in range(0, len(STREAM), piece):
        data = kind(bytearray(STREAM[at:at + piece]))
        frames += decoder.feed(data)
        sizes += decoder.sizes
        if kind is not bytes:  # the caller reuses its buffer: nothing of it may be kept
            data[:] = b"\xee" * len(data)
    assert frames == EXPECTED
    assert sizes == [len(frame) for frame in FRAMES]
    assert decoder.feed(b"") == [] and decoder.sizes == []


def test_a_frame_is_returned_as_soon_as_its_last_byte_arrives():
    decoder = t.FrameDecoder(compression=False)
    first = FRAMES[0]
    assert decoder.feed(first[:-1]) == []
    assert decoder.feed(first[-1:] + FRAMES[1][:3]) == [EXPECTED[0]]
    assert decoder.feed(FRAMES[1][3:]) == [EXPECTED[1]]


@pytest.mark.parametrize("header, message", [
    (struct.pack(">BI", t.DATA, t.MAX_BODY + 1), "oversized tunnel frame"),
    (struct.pack(">BI", 9, 0), "unknown tunnel frame type 0x09"),
])
def test_a_bad_header_is_refused_before_its_body_arrives(header, message):
    decoder = t.FrameDecoder(compression=False)
    assert decoder.feed(FRAMES[1] + header[:2]) == [EXPECTED[1]]
    with pytest.raises(ProtocolError, match=message):
        decoder.feed(header[2:])
