"""Relaying a message without decoding it (header-only receive, ``codec.peek``): the envelope is
checked where the message passes, its body where it is used.

Pure: ``peek`` on good and bad frames, ``RawFrame.reframed`` round trips, ``peek_id``.
Real sockets: a ``Mailbox`` with ``relay`` set hands the named type over undecoded and decodes
everything else; the agent end of a real tunnel (``RequestServer``) refuses a relayed body that
does not validate as a reply to that request alone, and the daemon-side ``Link`` (what the
remote endpoint actor relays with) gets that refusal while its other requests go on.
"""

from __future__ import annotations

import asyncio
import os

import msgspec
import pytest

from mutagen_actors.wire import codec
from mutagen_actors.wire.errors import ProtocolError
from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.agent import AgentEcho, AgentEchoed
from mutagen_actors.wire.messages.base import ErrorReply, Ok, Ping
from mutagen_actors.wire.version import PROTOCOL_VERSION
from remote.linked_tunnels import linked_agent

from .mailboxes import served_mailbox

CHUNK = m.Chunk("t00/d0001/f01.dat", b"\x01" * 16, 0, 5, b"hello", True)
STAGE = m.StageChunks([CHUNK, m.Chunk("a", b"\x02" * 16, 0, 70000, os.urandom(70000), True)])


def _frame(*items) -> bytes:
    return msgspec.msgpack.encode(list(items))


# --------------------------------------------------------------------------------------- pure


@pytest.mark.parametrize("body, id, reply_to", [
    (STAGE, 7, 0),
    (m.StageChunks([]), 1 << 40, 0),          # a wide id
    (m.StageAck(1, []), 0, 300),              # a reply
    (Ping(5), 0, 0),
    (m.Supply([m.SupplyRequest("p", b"d" * 16, 0)], 1 << 20), 65536, 0),
])
def test_peek_reads_the_envelope_and_keeps_the_body_as_encoded(body, id, reply_to):
    frame = codec.encode(body, id=id, reply_to=reply_to)
    raw = codec.peek(frame)
    assert (raw.type_name, raw.id, raw.reply_to) == (type(body).__name__, id, reply_to)
    assert bytes(raw.body) == msgspec.msgpack.encode(body)
    again = codec.decode(raw.reframed(id=9, reply_to=4))
    assert (again.id, again.reply_to, again.body) == (9, 4, body)
    assert raw.head(id=9, reply_to=4) + raw.body == raw.reframed(id=9, reply_to=4)


@pytest.mark.parametrize("frame, words", [
    (b"", "empty frame"),
    (b"\xc1", "malformed frame"),
    (codec.encode(STAGE, id=1)[:-3], "malformed frame"),                      # truncated body
    (codec.encode(STAGE, id=1) + b"\x00", "malformed frame"),                 # trailing byte
    (_frame(PROTOCOL_VERSION + 1, 1, 0, ["StageChunks", []]), "protocol version mismatch"),
    (_frame(PROTOCOL_VERSION, 1, 0, ["NoSuchMessage", []]), "unknown message type 'NoSuchMessage'"),
    (_frame(PROTOCOL_VERSION, 1, 0, 42), "not a [type, field, ...] array"),
    (_frame(PROTOCOL_VERSION, 1, 0, [7, []]), "not a [type, field, ...] array"),
    (_frame(PROTOCOL_VERSION, "one", 0, ["Ok"]), "invalid message"),          # id not an int
    (_frame(PROTOCOL_VERSION, 1, 0), "invalid message"),                      # no body
    (_frame(PROTOCOL_VERSION, 1, 0, ["Ok"], 5), "invalid message"),           # a fifth item
])
def test_peek_refuses_what_is_wrong_with_the_envelope(frame, words):
    with pytest.raises(ProtocolError, match=None) as caught:
        codec.peek(frame)
    assert words in str(caught.value)


def test_peek_refuses_an_oversized_frame():
    with pytest.raises(ProtocolError, match="oversized frame"):
        codec.peek(codec.encode(STAGE, id=1), max_size=1000)


def test_peek_does_not_check_the_fields_the_receiver_checks_them():
    """A body whose fields are wrong passes the relay (only its envelope is read there) and is
    refused by the full decode at the receiver."""
    frame = _frame(PROTOCOL_VERSION, 3, 0, ["StageChunks", [[1, 2, 3]]])
    assert codec.peek(frame).type_name == "StageChunks"
    with pytest.raises(ProtocolError, match="invalid message"):
        codec.decode(frame)


@pytest.mark.parametrize("frame, id", [
    (_frame(PROTOCOL_VERSION, 12, 0, ["StageChunks", [[1, 2, 3]]]), 12),  # readable envelope
    (_frame(PROTOCOL_VERSION + 1, 13, 0, ["Ok"]), 13),                      # other version
    (b"\xc1 not msgpack", 0),
    (_frame("x", 1), 0),
])
def test_peek_id_finds_the_request_of_an_unreadable_frame(frame, id):
    assert codec.peek_id(frame) == id


# ------------------------------------------------------------------------- a real mailbox


def test_a_mailbox_hands_relayed_types_over_undecoded_and_decodes_the_rest():
    async def main():
        async with served_mailbox(frozenset({"StageChunks"})) as (mailbox, client):
            sent = asyncio.ensure_future(client.request(STAGE, timeout=10))
            relayed = await asyncio.wait_for(mailbox.receive(), 10)
            assert isinstance(relayed.body, codec.RawFrame)
            assert relayed.body.type_name == "StageChunks" and relayed.id == relayed.body.id
            assert codec.decode(relayed.body.reframed(id=1)).body == STAGE
            await relayed.reply(m.StageAck(2, []))
            assert await sent == m.StageAck(2, [])

            # a relayed type whose envelope is broken is dropped there, as any bad frame
            await client.send_raw([_frame(PROTOCOL_VERSION + 1, 5, 0, ["StageChunks", []])])
            other = asyncio.ensure_future(client.request(m.FileSizes(["a"]), timeout=10))
            decoded = await asyncio.wait_for(mailbox.receive(), 10)
            assert decoded.body == m.FileSizes(["a"])  # decoded as before
            assert mailbox.protocol_errors == 1
            await decoded.reply(m.Sizes([1]))
            assert await other == m.Sizes([1])

    asyncio.run(main())


# ------------------------------------------------------------- a real tunnel to the agent end


async def _agent_handler(message):
    if isinstance(message, m.StageChunks):
        return m.StageAck(len(message.chunks), [])
    if isinstance(message, AgentEcho):
        await asyncio.sleep(0.2)  # still in flight while the bad relay is refused
        return AgentEchoed(message.payload)
    raise NotHandled


@pytest.mark.parametrize("compression", [False, True])
def test_a_relayed_body_that_does_not_validate_is_refused_by_the_agent_alone(compression):
    """The Link relays bodies as they came: a good one is answered; a bad one (fields of the
    wrong type) is refused by the agent's decode with a clear ``protocol`` error as the reply to
    that request, while a request in flight beside it still gets its answer."""
    async def main():
        async with linked_agent(_agent_handler, compression=compression) as (link, daemon, _):
            good = codec.peek(codec.encode(STAGE, id=77))
            bad = codec.peek(_frame(PROTOCOL_VERSION, 78, 0, ["StageChunks", [["p", 1, 2]]]))
            echo = asyncio.ensure_future(link.request(AgentEcho(b"x" * 1000), timeout=10))
            await asyncio.sleep(0)
            refused = await link.relay(bad, timeout=10)
            answered = await link.relay(good, timeout=10)
            return refused, answered, await echo, daemon.is_closed

    refused, answered, echoed, closed = asyncio.run(main())
    assert isinstance(refused, ErrorReply) and refused.code == "protocol", refused
    # names what was wrong and where: the first chunk of the body
    assert refused.message.startswith("invalid message: Expected `array`"), refused.message
    assert "$[3][1][0]" in refused.message, refused.message
    assert answered == m.StageAck(2, [])
    assert echoed == AgentEchoed(b"x" * 1000)
    assert not closed
