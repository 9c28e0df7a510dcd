"""The codec validates every frame on decode and names what was wrong."""

import tomllib
from pathlib import Path

import msgspec
import pytest

from mutagen_actors.wire import codec
from mutagen_actors.wire.errors import ProtocolError
from mutagen_actors.wire.messages.base import ErrorReply, Ping
from mutagen_actors.wire.version import MAX_FRAME_SIZE, PROTOCOL_VERSION, VERSION


def test_round_trip_keeps_ids_and_body():
    envelope = codec.decode(codec.encode(Ping(7), id=3, reply_to=2))
    assert (envelope.version, envelope.id, envelope.reply_to, envelope.body) == (
        PROTOCOL_VERSION, 3, 2, Ping(7))


def _raw(value) -> bytes:
    return msgspec.msgpack.encode(value)


@pytest.mark.parametrize(
    "frame, expected",
    [
        (b"", "empty frame"),
        (b"\xc1", "malformed frame"),
        (b"\x94\x01\x00", "malformed frame"),  # truncated array
        (_raw("hello"), "invalid message"),
        (_raw([PROTOCOL_VERSION, 0, 0, ["NoSuchMessage", 1]]), "invalid message: Invalid value 'NoSuchMessage'"),
        (_raw([PROTOCOL_VERSION, 0, 0, ["Ping"]]), "invalid message"),  # missing field
        (_raw([PROTOCOL_VERSION, 0, 0, ["Ping", "x"]]), "invalid message: Expected `int`"),  # wrong type
        (_raw([PROTOCOL_VERSION, 0, 0, ["Ping", 1, 2]]), "invalid message"),  # extra field
        (_raw([PROTOCOL_VERSION, "a", 0, ["Ping", 1]]), "invalid message"),
        (_raw([PROTOCOL_VERSION + 1, 0, 0, ["Ping", 1]]), "protocol version mismatch: peer speaks 2"),
        (_raw([PROTOCOL_VERSION + 1, 0, 0, ["FutureMessage"]]), "protocol version mismatch"),
        (_raw([PROTOCOL_VERSION, 0, 0, ["ErrorReply", "c"]]), "invalid message"),
    ],
)
def test_malformed_frames_are_rejected_with_a_reason(frame, expected):
    with pytest.raises(ProtocolError) as caught:
        codec.decode(frame)
    assert expected in str(caught.value)


def test_oversized_frame_is_rejected_before_parsing():
    with pytest.raises(ProtocolError, match="oversized frame"):
        codec.decode(b"\x00" * (MAX_FRAME_SIZE + 1))
    frame = codec.encode(ErrorReply("failed", "x" * 40))
    with pytest.raises(ProtocolError, match=rf"oversized frame: {len(frame)} bytes \(limit 10\)"):
        codec.decode(frame, max_size=10)


def test_package_version_matches_pyproject():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == VERSION
