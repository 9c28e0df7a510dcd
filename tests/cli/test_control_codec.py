"""The CLI's control-socket client decodes with the control subset of the schema
(``wire.control_schema``) and must answer exactly as ``wire.codec`` would: same messages, same
bytes, same error texts, and a message of another domain still decodes (through the fallback)."""

from __future__ import annotations

import msgspec
import pytest

from mutagen_actors.wire import codec, schema, stream_client
from mutagen_actors.wire.control_schema import CONTROL_MESSAGES
from mutagen_actors.wire.errors import ProtocolError
from mutagen_actors.wire.messages import actor, base, control, forward, sync
from mutagen_actors.wire.version import PROTOCOL_VERSION

BODIES = [
    base.Ping(7),
    base.Ok(),
    base.ErrorReply("not-found", "no such session"),
    control.Hello("0.1.0"),
    control.Welcome("0.1.0", 42),
    control.GetDaemonStatus(),
    sync.SyncList(selection=sync.Selection(all=True)),
    forward.ForwardList(selection=sync.Selection(specifications=["web"])),
    actor.Stop(),  # another domain: decoded through the fallback to the whole schema
]


def test_control_messages_are_the_schemas_own_classes():
    assert all(schema.MESSAGE_TYPES[m.__name__] is m for m in CONTROL_MESSAGES)


@pytest.mark.parametrize("body", BODIES, ids=lambda body: type(body).__name__)
def test_same_bytes_and_same_message_as_the_codec(body):
    frame = codec.encode(body, id=3, reply_to=2)
    assert stream_client.encode(body, id=3, reply_to=2) == frame
    assert _fields(stream_client.decode(frame)) == _fields(codec.decode(frame)) == (
        PROTOCOL_VERSION, 3, 2, body)


def _fields(envelope) -> tuple:
    return (envelope.version, envelope.id, envelope.reply_to, envelope.body)


BAD_FRAMES = [
    ("empty", b""),
    ("malformed", b"\xc1"),
    ("not an envelope", msgspec.msgpack.encode("hello")),
    ("other version", msgspec.msgpack.encode([PROTOCOL_VERSION + 1, 1, 0, ["Ok"]])),
    ("unknown type", msgspec.msgpack.encode([PROTOCOL_VERSION, 1, 0, ["NoSuchMessage"]])),
    ("bad field", msgspec.msgpack.encode([PROTOCOL_VERSION, 1, 0, ["Ping", "seven"]])),
    ("missing field", msgspec.msgpack.encode([PROTOCOL_VERSION, 1, 0, ["Welcome", "0.1.0"]])),
]


@pytest.mark.parametrize("frame", [f for _, f in BAD_FRAMES], ids=[n for n, _ in BAD_FRAMES])
def test_same_error_as_the_codec(frame):
    with pytest.raises(ProtocolError) as expected:
        codec.decode(frame)
    with pytest.raises(ProtocolError) as got:
        stream_client.decode(frame)
    assert str(got.value) == str(expected.value)


def test_oversized_frame_is_refused_with_the_codecs_text():
    frame = codec.encode(base.ErrorReply("failed", "x" * 100))
    with pytest.raises(ProtocolError) as expected:
        codec.decode(frame, max_size=50)
    with pytest.raises(ProtocolError) as got:
        stream_client.decode(frame, max_size=50)
    assert str(got.value) == str(expected.value)
