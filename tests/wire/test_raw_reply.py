"""Replies relayed without decoding ("raw replies"): a relaying actor may answer with the
``codec.RawFrame`` it got from the next hop; the mailbox sends its body as it came under the
reply's envelope, and the requester decodes and validates it as any reply.

Pure: ``codec.raw_field`` reads one field of a header-only message.
Real sockets: a ``Mailbox`` answering a ``DealerClient`` with a ``RawFrame``; a raw reply whose
fields do not validate is never accepted by the requester.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from mutagen_actors.actors.sync.model import Change, Counts, Entry
from mutagen_actors.wire import codec
from mutagen_actors.wire.errors import RequestTimeout
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.version import PROTOCOL_VERSION

from .mailboxes import served_mailbox

TREE = Entry.directory({f"f{i}": Entry.file(bytes([i]) * 16) for i in range(50)})
SCAN = m.ScanReply("epoch", 3, True, TREE, Counts(1, 50), [], "native")
REFERS = m.ScanReply("epoch", 4, True, None, Counts(1, 50), [], "native",
                     delta=[Change("d", None, None)], from_transition=[0])


def _raw(body, **ids) -> codec.RawFrame:
    return codec.peek(codec.encode(body, **ids))


# --------------------------------------------------------------------------------------- pure


@pytest.mark.parametrize("body, field, expected", [
    (SCAN, "from_transition", []),
    (REFERS, "from_transition", [0]),
    (SCAN, "generation", 3),
    (SCAN, "epoch", "epoch"),
    (SCAN, "root", TREE),
    (REFERS, "root", None),
    (m.StageChunks([]), "chunks", []),
])
def test_raw_field_reads_one_field_as_encoded(body, field, expected):
    raw = codec.raw_field(_raw(body, reply_to=5), type(body), field)
    assert raw is not None
    assert bytes(raw) == msgspec.msgpack.encode(expected)


def test_raw_field_of_an_omitted_trailing_field_is_none():
    """A peer may leave trailing defaults out: the field then has its default."""
    frame = msgspec.msgpack.encode([PROTOCOL_VERSION, 0, 9, ["ScanReply", "e", 1, False, None,
                                                             [0, 0, 0, 0], [], "none"]])
    raw = codec.peek(frame)
    assert codec.raw_field(raw, m.ScanReply, "from_transition") is None
    assert codec.decode(frame).body.from_transition == []  # what the receiver then sees


def test_raw_field_refuses_another_message_type():
    with pytest.raises(ValueError, match="StageAck is not a ScanReply"):
        codec.raw_field(_raw(m.StageAck(1, [])), m.ScanReply, "from_transition")


# ------------------------------------------------------------------------- a real mailbox


def _serve(check):
    async def main():
        async with served_mailbox() as (mailbox, client):
            await check(mailbox, client)

    asyncio.run(main())


def test_a_raw_reply_reaches_the_requester_as_the_message_it_encodes():
    async def check(mailbox, client):
        asked = asyncio.ensure_future(client.request(m.Scan(False), timeout=10))
        request = await asyncio.wait_for(mailbox.receive(), 10)
        # the next hop's reply to its own request id (another envelope), passed on as it came
        await request.reply(_raw(SCAN, reply_to=12345))
        assert await asked == SCAN

    _serve(check)


def test_a_raw_reply_whose_fields_do_not_validate_is_not_accepted():
    """The relay vouched only for the envelope: the requester's decode refuses the body (logged
    as a protocol error), so the request ends at its deadline, never with a wrong value."""
    async def check(mailbox, client):
        asked = asyncio.ensure_future(client.request(m.Scan(False), timeout=0.5))
        request = await asyncio.wait_for(mailbox.receive(), 10)
        bad = codec.peek(msgspec.msgpack.encode([PROTOCOL_VERSION, 0, 1,
                                                 ["ScanReply", 1, 2, 3, 4, 5, 6, 7]]))
        await request.reply(bad)
        with pytest.raises(RequestTimeout):
            await asked

        later = asyncio.ensure_future(client.request(m.Scan(False), timeout=10))
        request = await asyncio.wait_for(mailbox.receive(), 10)
        await request.reply(_raw(SCAN))
        assert await later == SCAN  # the mailbox and the client carry on

    _serve(check)
