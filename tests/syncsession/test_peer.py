"""``Peer`` (a ``DealerClient`` with a connection monitor) against a real mailbox over ipc:
replies, the texts of its errors, and in-flight requests failing at once when the mailbox goes
away; ``DealerClient``'s own texts for comparison."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time

import pytest
import structlog
import zmq.asyncio

from mutagen_actors.actors.syncsession.peer import Peer
from mutagen_actors.wire.errors import RequestTimeout
from mutagen_actors.wire.messages.actor import Sleep
from mutagen_actors.wire.messages.base import Ok, Ping, Pong
from mutagen_actors.wire.sockets import DealerClient, Mailbox

log = structlog.get_logger("test")


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _run(scenario, client_of, *, answer: bool = True):
    """``scenario(client, mailbox, received)`` with ``client_of(context, endpoint)`` connected to
    a mailbox that answers with ``Ok`` (when ``answer``; heartbeats always); ``received`` lists
    the requests the mailbox got."""

    async def main():
        directory = tempfile.mkdtemp(prefix="ma-peer-", dir="/tmp")
        endpoint = f"ipc://{directory}/m.ipc"
        context = zmq.asyncio.Context()
        mailbox = Mailbox(context, endpoint, log=log)
        mailbox.bind()

        received = []

        async def serve():
            while True:
                request = await mailbox.receive()
                received.append(request.body)
                if answer:
                    await request.reply(Ok())

        server = asyncio.ensure_future(serve())
        client = client_of(context, endpoint)
        try:
            return await scenario(client, mailbox, received)
        finally:
            await client.aclose()
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
            mailbox.close()
            context.destroy(linger=0)
            os.rmdir(directory)

    return asyncio.run(main())


def _peer(context, endpoint):
    return Peer(context, endpoint, "alpha endpoint", log)


def _dealer(context, endpoint):
    return DealerClient(context, endpoint, log=log)


def test_peer_answers_requests_and_heartbeats_and_sees_the_connection():
    async def scenario(peer, mailbox, received):
        await _until(lambda: peer.connected)
        return await peer.request(Sleep(0), timeout=5), await peer.request(Ping(7), timeout=5)

    assert _run(scenario, _peer) == (Ok(), Pong(7))


@pytest.mark.parametrize("client_of, expected", [
    (_peer, "Sleep got no answer from the alpha endpoint within 0.2 s"),
    (_dealer, "Sleep got no answer within 0.2 s from ipc://"),
])
def test_a_request_without_answer_times_out_with_the_clients_text(client_of, expected):
    async def scenario(client, mailbox, received):
        with pytest.raises(RequestTimeout) as raised:
            await client.request(Sleep(0), timeout=0.2)
        return str(raised.value)

    assert _run(scenario, client_of, answer=False).startswith(expected)


def test_a_request_in_flight_fails_at_once_when_the_peer_goes_away():
    async def scenario(peer, mailbox, received):
        await _until(lambda: peer.connected)
        pending = asyncio.ensure_future(peer.request(Sleep(0), timeout=60))
        await _until(lambda: received)
        started = time.monotonic()
        mailbox.close()
        with pytest.raises(ConnectionError) as raised:
            await pending
        return str(raised.value), time.monotonic() - started, peer.disconnects, peer.connected

    text, took, disconnects, connected = _run(scenario, _peer, answer=False)
    assert text == "the alpha endpoint went away"
    assert took < 10 and disconnects == 1 and not connected


@pytest.mark.parametrize("client_of, expected", [
    (_peer, "alpha endpoint: client closed"),
    (_dealer, "mailbox ipc://"),
])
def test_close_fails_the_requests_in_flight(client_of, expected):
    async def scenario(client, mailbox, received):
        pending = asyncio.ensure_future(client.request(Sleep(0), timeout=60))
        await _until(lambda: received)
        client.close()
        with pytest.raises(ConnectionError) as raised:
            await pending
        return str(raised.value)

    text = _run(scenario, client_of, answer=False)
    assert text.startswith(expected) and text.endswith("client closed")
