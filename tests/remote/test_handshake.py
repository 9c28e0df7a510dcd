"""The stream handshake: pure parsing, and reading a hello from a real asyncio stream."""

from __future__ import annotations

import asyncio

import pytest

from mutagen_actors.wire import handshake as h
from mutagen_actors.wire.version import PROTOCOL_VERSION


@pytest.mark.parametrize("data, expected", [
    (h.hello(0), h.Hello(PROTOCOL_VERSION, 0)),
    (h.hello(h.FEATURE_LZ4), h.Hello(PROTOCOL_VERSION, h.FEATURE_LZ4)),
    (h.hello(0xFFFF), h.Hello(PROTOCOL_VERSION, 0xFFFF)),
])
def test_parse_hello_accepts(data, expected):
    assert h.parse_hello(data) == expected


@pytest.mark.parametrize("data, message", [
    (b"", "did not answer the handshake: it printed nothing"),
    (b"Welcome to Ubuntu\n", "did not answer the handshake; it printed: 'Welcome to Ubuntu\\n'"),
    (b"sh: 1: python3: not found\n", "it printed: 'sh: 1: python3: not found\\n'"),
    (h.MAGIC[:5], "did not answer the handshake; it printed:"),
    (b"\x00\x01binary", "it printed: '\\x00\\x01binary'"),
    (b"x" * 300, "x" * 200 + "...'"),
    (h.hello(0, version=PROTOCOL_VERSION + 1),
     f"speaks protocol version {PROTOCOL_VERSION + 1}, this side speaks {PROTOCOL_VERSION}"),
])
def test_parse_hello_refuses_with_what_arrived(data, message):
    with pytest.raises(h.HandshakeError) as caught:
        h.parse_hello(data)
    assert message in str(caught.value)


@pytest.mark.parametrize("data, possible", [
    (b"", True), (h.MAGIC[:1], True), (h.MAGIC, True), (h.hello(1), True),
    (b"W", False), (h.MAGIC[:3] + b"x", False),
])
def test_could_be_hello(data, possible):
    assert h.could_be_hello(data) is possible


@pytest.mark.parametrize("mine, theirs, agreed", [
    (h.FEATURE_LZ4, h.FEATURE_LZ4, h.FEATURE_LZ4),
    (h.FEATURE_LZ4, 0, 0),
    (0, h.FEATURE_LZ4, 0),
    (0xFFFF, 0xFFFF, h.KNOWN_FEATURES),  # unknown bits are never agreed
])
def test_agreed_features(mine, theirs, agreed):
    assert h.agreed_features(mine, theirs) == agreed


def _read(chunks: list[bytes], eof: bool = True, **kwargs):
    async def main():
        reader = asyncio.StreamReader()
        for chunk in chunks:
            reader.feed_data(chunk)
        if eof:
            reader.feed_eof()
        return await asyncio.wait_for(h.read_hello(reader, **kwargs), 5)
    return asyncio.run(main())


def test_read_hello_in_pieces():
    data = h.hello(h.FEATURE_LZ4)
    assert _read([bytes([b]) for b in data], eof=False) == h.Hello(PROTOCOL_VERSION, h.FEATURE_LZ4)


def test_read_hello_quotes_a_banner_followed_by_the_hello():
    """A banner before the magic is reported, not skipped: the stream is not ours."""
    with pytest.raises(h.HandshakeError, match="it printed: 'Last login: yesterday"):
        _read([b"Last login: yesterday\n", h.hello(0)])


def test_read_hello_does_not_wait_forever_for_more_garbage():
    with pytest.raises(h.HandshakeError, match="it printed: 'motd'"):
        _read([b"motd"], eof=False, garbage_wait=0.1)


def test_exchange_times_out_with_a_clear_message():
    async def main():
        reader = asyncio.StreamReader()

        class Sink:
            def write(self, data):
                pass

            async def drain(self):
                pass

        await h.exchange(reader, Sink(), 0, timeout=0.2)

    with pytest.raises(h.HandshakeError, match="did not answer the handshake within 0.2 s"):
        asyncio.run(main())
