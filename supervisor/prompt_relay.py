"""Relaying SSH connect questions (unknown host key, password) to the terminal of the waiting
CLI command.

- ``TerminalRelay``: the prompter of one ``create``/``resume`` command whose CLI sent
  ``EnablePrompting`` (``relay_for_current_command()`` builds it from the control connection
  being served, or returns None when that CLI has no terminal). Each question goes to the CLI as
  a ``PromptQuestion`` and waits at most ``PROMPT_TIMEOUT`` (+ a little slack) for the answer;
  past that, or if the CLI went away, the answer is None and ``failure`` says why ("no answer
  to the prompt within 60 s"). ``clock`` measures the time questions were open (connect
  deadlines do not count it). At ``create`` the session's own endpoint actors make the first
  connect and every question goes to the terminal (a wrong password is asked again). At
  ``resume`` the daemon first connects once itself with the relay (the probe); the session's
  actors connect afterwards, and their identical questions (the password the user just typed)
  are answered from the relay's memory of this command instead of asking again (``replay``).
  Answers live only as long as the command.
- ``PromptService``: the daemon's prompt mailbox (``paths.mailbox(MAILBOX_TOKEN)``). Endpoint
  actors send their connect questions there (``PromptRelay``); a question for a session with a
  command registered (``waiting(session, relay)``) goes to that relay, any other is answered
  "nobody" at once, so background reconnects never wait for a user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Optional

import structlog

from mutagen_actors.agent.transports.prompt_time import PromptClock
from mutagen_actors.wire.messages.control import PromptAnswer, PromptQuestion, PromptRelay
from mutagen_actors.wire.sockets import Mailbox
from mutagen_actors.wire.stream import current_peer

PROMPT_TIMEOUT = 60.0  # how long a user has to answer one question
# Test-only: another answer deadline (seconds), read from the daemon's environment; unset in
# real use.
TEST_TIMEOUT_VARIABLE = "MUTAGEN_ACTORS_TEST_PROMPT_TIMEOUT"
SLACK = 5.0  # the daemon waits this much longer than the CLI (the CLI says "timed out" first)
MAILBOX_TOKEN = "prompts"

log = structlog.get_logger("supervisor.prompts")


class TerminalRelay:
    """The prompter (``agent.transports.Prompter``) of one waiting CLI command."""

    def __init__(self, peer, timeout: float | None = None):
        self.peer = peer
        self.timeout = timeout if timeout is not None else prompt_timeout()
        self.failure = ""  # why the last question got no answer ("" if it got one)
        self.clock = PromptClock(self._ask)  # the prompter to hand to a connect
        self._memory: dict[tuple[str, str], str] = {}

    async def __call__(self, kind: str, message: str, echo: bool) -> Optional[str]:
        return await self.clock(kind, message, echo)

    async def replay(self, kind: str, message: str, echo: bool) -> Optional[str]:
        """The answer this command's user last gave to the same question, else ask."""
        remembered = self._memory.get((kind, message))
        if remembered is not None:
            return remembered
        return await self.clock(kind, message, echo)

    async def _ask(self, kind: str, message: str, echo: bool) -> Optional[str]:
        question = PromptQuestion(kind, message, echo, self.timeout)
        try:
            reply = await self.peer.ask(question, self.timeout + SLACK)
        except asyncio.TimeoutError:
            reply = PromptAnswer(None, "timed out")
        except ConnectionError:
            reply = PromptAnswer(None, "the command went away")
        if reply.answer is None:
            self.failure = (f"no answer to the prompt within {self.timeout:g} s"
                            if reply.reason == "timed out" else
                            f"the prompt was not answered ({reply.reason or 'no answer'})")
            log.info("prompt not answered", kind=kind, reason=self.failure)
        else:
            self.failure = ""
            self._memory[(kind, message)] = reply.answer
        return reply.answer

    def explain(self, error: str) -> str:
        """``error`` of a failed connect, with the prompt's failure first when there was one."""
        return f"{self.failure}: {error}" if self.failure else error


def prompt_timeout() -> float:
    """``PROMPT_TIMEOUT``, or the test-only override when it is a positive number."""
    try:
        value = float(os.environ.get(TEST_TIMEOUT_VARIABLE, "0"))
    except ValueError:
        value = 0.0
    return value if value > 0 else PROMPT_TIMEOUT


def relay_for_current_command() -> TerminalRelay | None:
    """The relay to the CLI whose request is being handled, if that CLI can answer."""
    peer = current_peer()
    if peer is None or not peer.prompting:
        return None
    return TerminalRelay(peer)


class PromptService:
    """The daemon's prompt mailbox (see the module docstring). Start it inside the event loop."""

    def __init__(self, zmq_context, paths):
        self.address = paths.mailbox(MAILBOX_TOKEN)
        self.relays: dict[str, TerminalRelay] = {}
        self.mailbox = Mailbox(zmq_context, self.address, log=log)
        self.mailbox.bind()
        self._tasks: set[asyncio.Task] = set()
        self._task = asyncio.get_running_loop().create_task(self._serve())

    @contextlib.contextmanager
    def waiting(self, session: str, relay: TerminalRelay | None):
        """While inside, ``session``'s actors' questions go to ``relay`` (no-op for None)."""
        if relay is None:
            yield
            return
        self.relays[session] = relay
        try:
            yield
        finally:
            if self.relays.get(session) is relay:
                del self.relays[session]

    async def aclose(self) -> None:
        """Stop answering, cancel questions in flight and remove the mailbox file."""
        tasks = [self._task, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.mailbox.close()

    async def _serve(self) -> None:
        while True:
            try:
                request = await self.mailbox.receive()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the context is gone: the daemon stops
                log.info("prompt mailbox closed", error=str(error))
                return
            task = asyncio.get_running_loop().create_task(self._answer(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, request) -> None:
        body = request.body
        answer = PromptAnswer(None, "no terminal")
        if isinstance(body, PromptRelay):
            relay = self.relays.get(body.session)
            if relay is not None:
                log.info("relaying a prompt", session=body.session, side=body.side,
                         kind=body.kind)
                answer = PromptAnswer(await relay.replay(body.kind, body.message, body.echo),
                                      relay.failure)
        try:
            await request.reply(answer)
        except Exception as error:  # noqa: BLE001 - the asking actor went away
            log.info("prompt answer not delivered", error=str(error))


_services: dict[int, PromptService] = {}


def service(runtime) -> PromptService:
    """The one prompt service of this daemon (created on first use, inside the loop)."""
    key = id(runtime)
    if key not in _services:
        _services[key] = PromptService(runtime.zmq_context, runtime.paths)
    return _services[key]


async def close_service(runtime) -> None:
    """Close this daemon's prompt service if it was ever started (daemon shutdown)."""
    relay_service = _services.pop(id(runtime), None)
    if relay_service is not None:
        await relay_service.aclose()
