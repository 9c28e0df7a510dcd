"""The short CHANNEL_DATA path of the forwarder's SSH connections (``actors.forward.remote``) is
really taken with the asyncssh installed here, and what it sends arrives intact through the
real sshd, across a rekey (asyncssh's stock path handles the key exchange in between)."""

from __future__ import annotations

import asyncio
import hashlib

from forward.servers import HashSink

from mutagen_actors.actors.forward.endpoints import parse_endpoint
from mutagen_actors.actors.forward.remote import connect_remote


def test_channel_data_takes_the_short_path_and_survives_a_rekey(sshd):
    sink = HashSink("tcp:127.0.0.1:0")

    async def scenario():
        side = await connect_remote({"protocol": "ssh", "host": "testhost"}, cache_directory="",
                                    ssh_directory=sshd.client.directory)
        try:
            side.connection._rekey_bytes = 24 << 20  # rekey during the transfer
            lean = side.connection.send_packet.lean
            assert lean is not None, "the asyncssh installed lacks the state the path needs"
            reader, writer = await side.dialer(parse_endpoint(sink.endpoint,
                                                              listening=False))()
            digest, size = hashlib.sha256(), 64 << 20
            block = bytes(range(256)) * 4096
            for index in range(size // len(block)):
                chunk = index.to_bytes(8, "big") + block[8:]
                digest.update(chunk)
                writer.write(chunk)
                await writer.drain()
            writer.write_eof()
            answer = await asyncio.wait_for(reader.read(), 60)
            # keys were renewed: the byte count restarted after the last exchange
            assert side.connection._rekey_bytes_sent < 24 << 20
            return answer.decode(), f"{size} {digest.hexdigest()}\n", lean.packets
        finally:
            await side.close()

    try:
        answer, expected, packets = asyncio.run(scenario())
    finally:
        sink.close()
    assert answer == expected
    assert packets > (64 << 20) // 32768 // 2, packets  # most packets went the short way
