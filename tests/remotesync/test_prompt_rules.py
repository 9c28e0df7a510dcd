"""The pieces of the prompt relay without SSH: deadlines that skip prompt time, the new control
messages, the daemon's relay of one command, and a question asked over a real control socket."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading

import pytest

from mutagen_actors.agent.transports.prompt_time import PromptClock, clocked, within
from mutagen_actors.agent.transports.ssh import key_type_name
from mutagen_actors.supervisor.prompt_relay import TerminalRelay
from mutagen_actors.wire import codec
from mutagen_actors.wire.errors import ProtocolError
from mutagen_actors.wire.messages.base import Ok
from mutagen_actors.wire.messages.control import (
    EnablePrompting,
    Hello,
    PromptAnswer,
    PromptQuestion,
    PromptRelay,
    Welcome,
)
from mutagen_actors.wire.stream import StreamClient, StreamServer, current_peer


@pytest.mark.parametrize("algorithm, shown", [
    ("ssh-ed25519", "ED25519"), ("ecdsa-sha2-nistp256", "ECDSA"), ("ssh-rsa", "RSA"),
    ("rsa-sha2-512", "RSA"), ("ssh-dss", "DSA"), ("ssh-ed448", "ED448"),
    ("sk-ssh-ed25519@openssh.com", "ED25519"), ("something-new", "something-new"),
])
def test_host_key_question_names_the_key_type_as_openssh(algorithm, shown):
    assert key_type_name(algorithm) == shown


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# events: ("open" | "close" | advance seconds), then the expected spent()
@pytest.mark.parametrize("events, spent", [
    ([], 0.0),
    ([5.0], 0.0),
    (["open", 2.0], 2.0),
    (["open", 2.0, "close", 3.0], 2.0),
    (["open", 1.0, "close", 1.0, "open", 4.0, "close"], 5.0),
    (["open", 1.0, "open", 1.0, "close", 1.0, "close", 9.0], 3.0),  # overlapping questions
])
def test_prompt_clock_counts_time_with_a_question_open(events, spent):
    now = FakeTime()
    clock = PromptClock(None, now=now)
    for event in events:
        if event == "open":
            clock.opened()
        elif event == "close":
            clock.closed()
        else:
            now.now += event
    assert clock.spent() == pytest.approx(spent)


def test_clocked_wraps_once_and_keeps_none():
    async def prompter(kind, message, echo):
        return "x"

    clock = clocked(prompter)
    assert isinstance(clock, PromptClock) and clocked(clock) is clock and clocked(None) is None


@pytest.mark.parametrize("question_seconds, work_seconds, timeout, finishes", [
    (0.0, 0.05, 0.5, True),
    (0.0, 1.0, 0.2, False),   # no question: a plain deadline
    (0.6, 0.05, 0.3, True),   # the user took longer than the deadline to answer
])
def test_within_does_not_count_prompt_time(question_seconds, work_seconds, timeout, finishes):
    async def slow_user(kind, message, echo):
        await asyncio.sleep(question_seconds)  # the user thinking: the time being measured
        return "yes"

    async def connect(clock):
        if question_seconds:
            assert await clock("host-key", "trust?", True) == "yes"
        await asyncio.sleep(work_seconds)  # the connect's own work
        return "connected"

    async def main():
        clock = PromptClock(slow_user)
        return await within(connect(clock), timeout, clock)

    if finishes:
        assert asyncio.run(main()) == "connected"
    else:
        with pytest.raises(asyncio.TimeoutError):
            asyncio.run(main())


@pytest.mark.parametrize("message", [
    EnablePrompting(),
    PromptQuestion("password", "Password: ", False, 60.0),
    PromptAnswer("secret"),
    PromptAnswer(None, "timed out"),
    PromptRelay("sync_x", "beta", "host-key", "Are you sure...", True),
])
def test_prompt_messages_round_trip(message):
    assert codec.decode(codec.encode(message, id=7)).body == message


def test_a_prompt_answer_of_the_wrong_type_is_a_protocol_error():
    import msgspec

    frame = msgspec.msgpack.encode([1, 0, 3, ["PromptAnswer", 42, ""]])
    with pytest.raises(ProtocolError, match="invalid message"):
        codec.decode(frame)


class ScriptedPeer:
    """A control connection whose user answers from a script (the relay is under test)."""

    def __init__(self, *replies):
        self.replies = list(replies)
        self.asked = []

    async def ask(self, question, timeout):
        self.asked.append(question)
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


@pytest.mark.parametrize("reply, answer, failure", [
    (PromptAnswer("yes"), "yes", ""),
    (PromptAnswer(None, "timed out"), None, "no answer to the prompt within 60 s"),
    (asyncio.TimeoutError(), None, "no answer to the prompt within 60 s"),
    (ConnectionError("gone"), None, "the prompt was not answered (the command went away)"),
    (PromptAnswer(None, "no answer"), None, "the prompt was not answered (no answer)"),
])
def test_terminal_relay_answers_and_failures(reply, answer, failure):
    relay = TerminalRelay(ScriptedPeer(reply))
    assert asyncio.run(relay("password", "Password: ", False)) == answer
    assert relay.failure == failure
    expected = f"{failure}: unable to authenticate" if failure else "unable to authenticate"
    assert relay.explain("unable to authenticate") == expected


def test_terminal_relay_replays_what_the_user_typed_in_this_command():
    peer = ScriptedPeer(PromptAnswer("pw1"), PromptAnswer("pw2"))

    async def main():
        relay = TerminalRelay(peer)
        first = await relay("password", "Password: ", False)  # the daemon's probe asks
        again = await relay.replay("password", "Password: ", False)  # the actor's connect
        other = await relay.replay("kbdint", "Code: ", True)  # a new question is asked
        return first, again, other

    assert asyncio.run(main()) == ("pw1", "pw1", "pw2")
    assert [q.kind for q in peer.asked] == ["password", "kbdint"]


@pytest.mark.parametrize("enable, expected", [(True, "typed answer"), (False, "nobody")])
def test_a_handler_asks_the_waiting_client_over_the_control_socket(enable, expected):
    """Real StreamServer and StreamClient: the handler's question reaches ``on_question`` of the
    client's pending request only after ``EnablePrompting``."""
    directory = tempfile.mkdtemp(prefix="mr-prompt-sock-")
    path = os.path.join(directory, "s.sock")
    ready = threading.Event()
    stop = {}

    async def handler(body):
        if isinstance(body, Hello):
            return Welcome("x", os.getpid())
        peer = current_peer()
        if not peer.prompting:
            return PromptAnswer("nobody")
        return await peer.ask(PromptQuestion("password", "Password: ", False, 5.0), 5.0)

    async def serve():
        server = StreamServer(path, handler)
        await server.start()
        stop["event"] = asyncio.Event()
        stop["loop"] = asyncio.get_running_loop()
        ready.set()
        await stop["event"].wait()
        await server.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),))
    thread.start()
    try:
        assert ready.wait(10)
        questions = []
        with StreamClient(path) as client:
            client.connect(5)
            if enable:
                assert client.request(EnablePrompting(), 5) == Ok()

            def on_question(question):
                questions.append(question)
                return PromptAnswer("typed answer")

            reply = client.request(Hello("x"), 5, on_question)  # Hello: Welcome, no question
            assert isinstance(reply, Welcome)
            reply = client.request(Ok(), 5, on_question)
        assert reply == PromptAnswer(expected)
        assert [q.message for q in questions] == (["Password: "] if enable else [])
    finally:
        stop["loop"].call_soon_threadsafe(stop["event"].set)
        thread.join(10)
        shutil.rmtree(directory, ignore_errors=True)
