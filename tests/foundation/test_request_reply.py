"""The ZeroMQ mailbox and request/reply client, in one process over real ipc sockets."""

from __future__ import annotations

import asyncio
import os
import tempfile

import msgspec
import pytest
import zmq.asyncio

from mutagen_actors.wire import codec
from mutagen_actors.wire.errors import RemoteError, RequestTimeout
from mutagen_actors.wire.handling import NotHandled, Refused, answer
from mutagen_actors.wire.messages.actor import GetStatistics, Sleep, Stop
from mutagen_actors.wire.messages.base import ErrorReply, Ok, Ping, Pong
from mutagen_actors.wire.sockets import DealerClient, Mailbox
from mutagen_actors.wire.version import PROTOCOL_VERSION

import structlog

log = structlog.get_logger("test")


async def _handler(body):
    if isinstance(body, Sleep):
        await asyncio.sleep(body.seconds)
        return None
    if isinstance(body, GetStatistics):
        raise Refused("not-found", "no statistics here")
    if isinstance(body, Stop):
        raise ValueError("boom")
    raise NotHandled


def run_with_mailbox(scenario, *, serve=True, max_frame=1024):
    """Run ``scenario(client, mailbox)`` against a mailbox served by ``_handler``."""

    async def main():
        directory = tempfile.mkdtemp(prefix="ma-mb-", dir="/tmp")
        endpoint = f"ipc://{directory}/m.ipc"
        context = zmq.asyncio.Context()
        mailbox = Mailbox(context, endpoint, max_frame=max_frame, log=log)
        mailbox.bind()
        assert oct(os.stat(f"{directory}/m.ipc").st_mode & 0o777) == "0o600"

        async def serve_forever():
            while True:
                request = await mailbox.receive()
                await request.reply(await answer(_handler, request.body, log))

        server = asyncio.ensure_future(serve_forever()) if serve else None
        client = DealerClient(context, endpoint, log=log)
        try:
            return await scenario(client, mailbox)
        finally:
            client.close()
            if server is not None:
                server.cancel()
                await asyncio.gather(server, return_exceptions=True)
            mailbox.close()
            context.destroy(linger=0)
            os.rmdir(directory)

    return asyncio.run(main())


def test_request_returns_the_reply_matched_by_id():
    async def scenario(client, mailbox):
        # Concurrent requests: each gets its own answer.
        replies = await asyncio.gather(client.request(Sleep(0.05), timeout=5),
                                       client.request(Ping(4), timeout=5))
        rtt = await client.ping(timeout=5)
        return replies, rtt

    (slow, pong), rtt = run_with_mailbox(scenario)
    assert slow == Ok() and pong == Pong(4) and 0 < rtt < 5


@pytest.mark.parametrize(
    "request_body, code, text",
    [
        (GetStatistics(), "not-found", "no statistics here"),
        (Stop(), "failed", "ValueError: boom"),
        (Ok(), "unknown-request", "Ok is not handled here"),
    ],
)
def test_error_replies_raise_remote_error(request_body, code, text):
    async def scenario(client, mailbox):
        with pytest.raises(RemoteError) as caught:
            await client.request(request_body, timeout=5)
        return caught.value

    error = run_with_mailbox(scenario)
    assert (error.code, error.message) == (code, text)


def test_request_times_out_when_nobody_answers():
    async def scenario(client, mailbox):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RequestTimeout, match="Sleep got no answer within 0.2 s"):
            await client.request(Sleep(0), timeout=0.2)
        return loop.time() - started

    elapsed = run_with_mailbox(scenario, serve=False)
    assert 0.2 <= elapsed < 1.0


def test_late_reply_to_a_timed_out_request_is_not_taken_for_the_next_answer():
    async def scenario(client, mailbox):
        with pytest.raises(RequestTimeout):
            await client.request(Sleep(0.3), timeout=0.1)
        # The late Ok for the Sleep arrives while this Ping waits: the Ping still gets a Pong.
        return await client.request(Ping(9), timeout=5)

    assert run_with_mailbox(scenario) == Pong(9)


def test_mailbox_drops_invalid_frames_counts_them_and_keeps_serving():
    async def scenario(client, mailbox):
        await client.send_raw([b"\xc1"])
        await client.send_raw([b"a", b"b"])
        await client.send_raw([msgspec.msgpack.encode([PROTOCOL_VERSION, 1, 0, ["Ping", "x"]])])
        await client.send_raw([codec.encode(ErrorReply("c", "m" * 2000), id=3)])  # > max_frame
        pong = await client.request(Ping(1), timeout=5)
        return pong, mailbox.protocol_errors

    pong, errors = run_with_mailbox(scenario)
    assert pong == Pong(1) and errors == 4


def test_codec_round_trip_on_the_mailbox_path_keeps_ids():
    seen = []

    async def scenario(client, mailbox):
        async def one():
            request = await mailbox.receive()
            seen.append((request.id, request.body))
            await request.reply(Ok())

        receiver = asyncio.ensure_future(one())
        reply = await client.request(Sleep(1.5), timeout=5)
        await receiver
        return reply

    assert run_with_mailbox(scenario, serve=False) == Ok()
    assert seen == [(1, Sleep(1.5))]
