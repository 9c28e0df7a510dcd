"""The remote endpoint actor tells each failed connect attempt to a hello, once
(``EndpointHello`` refused ``unreachable`` with the attempt's reason): at once when one failed
since the last hello was told, else as soon as the next attempt fails, never the same failure
twice (so the reconciler's hellos do not spin during the back-off). The actor runs in this
process against a closed port (a real, refused TCP connect)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import structlog
import zmq.asyncio

from remote import infra

from mutagen_actors.actors.runtime.actor import ActorContext
from mutagen_actors.actors.runtime.launch import ActorLaunch
from mutagen_actors.agent import remote_endpoint_actor as rea
from mutagen_actors.wire.handling import Refused
from mutagen_actors.wire.messages import endpoint as m


async def _hellos(port: int, data_directory: str, count: int) -> list[tuple[str, str, float]]:
    """(code, message, seconds since the previous answer) of ``count`` hellos in a row."""
    launch = ActorLaunch(session="sync_test", actor_id="beta",
                         actor_class="mutagen_actors.agent.remote_endpoint_actor:"
                                     "RemoteEndpointActor",
                         mailbox="", supervisor_pid=os.getpid(),
                         args={"protocol": "ssh", "host": "127.0.0.1", "port": port,
                               "root": "project", "side": "beta", "session": "sync_test",
                               "data_directory": data_directory})
    context = zmq.asyncio.Context()
    actor = rea.RemoteEndpointActor(ActorContext(launch, structlog.get_logger("test"), context))
    await actor.on_start()
    answers = []
    try:
        last = time.monotonic()
        for _ in range(count):
            with pytest.raises(Refused) as refusal:
                await actor.handle(m.EndpointHello())
            now = time.monotonic()
            answers.append((refusal.value.code, refusal.value.message, now - last))
            last = now
        return answers
    finally:
        await actor.on_stop()
        context.destroy(linger=0)


def test_each_failed_attempt_is_told_once(tmp_path):
    port = infra.free_port()
    answers = asyncio.run(_hellos(port, str(tmp_path), 3))
    for code, message, _ in answers:
        assert code == "unreachable", answers
        assert message == f"unable to connect to 127.0.0.1:{port}: connection refused", answers
    assert answers[0][2] < rea.HELLO_WAIT, answers  # the first failure: not a hello's wait
    for _, _, waited in answers[1:]:  # the next attempt comes after the back-off
        assert rea.BACKOFF_FIRST * 0.8 <= waited < rea.BACKOFF_MAX + rea.HELLO_WAIT, answers
