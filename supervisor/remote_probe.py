"""A connect to a remote made for a waiting command, run in a short-lived child process:
``sync resume``'s check of a session's remote endpoints (whose questions go to its terminal;
``sync create`` has none: the session's own endpoint actors make its first connect) and
``forward create``'s SSH side.

Why: connecting over SSH loads asyncssh and cryptography (~15 MB resident, of which ~7 MB is
cryptography's compiled library). The daemon only needs the verdict of that connect, so
it does not load them itself: ``run_probe`` starts ``python -m
mutagen_actors.supervisor.remote_probe`` (the daemon's interpreter and environment, so the same
agent bundle cache, SSH agent and ``DOCKER_*`` variables), and the child connects, relays its
questions back, and exits.

Operations:
- ``"endpoint"``: ``agent.remote_endpoint_actor.probe_endpoint`` (connect, install the agent if
  needed, ask it who it is, close): a sync session's endpoint.
- ``"ssh"``: connect the transport and close it: a forwarding session's SSH side.

Protocol (one JSON object a line): the parent writes the request; the child answers
``{"ready": true}`` once its imports are done, then any number of ``{"step": text}`` (progress)
and ``{"prompt": [kind, message, echo]}`` (the parent writes ``{"answer": text or null}``, from
its prompter; one question at a time), and last ``{"done": true}`` or ``{"error": text,
"internal": bool}``. The child logs to the daemon's log file (``actor="probe"``).

Failure rules (``run_probe``): a refusal of the remote (``RemoteUnavailable``,
``TransportError``) raises ``ProbeFailed`` with its text; anything else the child hit raises
``ProbeFailed`` with ``internal`` set. ``asyncio.TimeoutError`` when the child was not ready
within ``start_timeout`` or the connect took longer than ``timeout`` not counting the time the
prompter's questions were open (``prompt_time.within``). A child that exits without a verdict
is a ``ProbeFailed`` naming its exit status. On every way out (cancellation included) the child
is killed and reaped.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Optional

MODULE = "mutagen_actors.supervisor.remote_probe"
START_TIMEOUT = 30.0  # interpreter start and imports, not counted in the connect's deadline


class ProbeFailed(ConnectionError):
    """The remote refused or could not be reached (``internal``: the probe itself failed)."""

    def __init__(self, message: str, internal: bool = False):
        super().__init__(message)
        self.internal = internal


# ---------------------------------------------------------------------------- daemon side


def _url_fields(url) -> dict:
    return {"protocol": url.protocol, "user": url.user, "host": url.host, "port": url.port,
            "path": url.path, "environment": dict(url.environment)}


async def run_probe(operation: str, url, *, data_directory: str = "", log_path: str = "",
                    side: str = "", prompter=None, steps: Optional[list] = None,
                    timeout: float, start_timeout: float = START_TIMEOUT) -> None:
    """Run ``operation`` on ``url`` (a ``supervisor.urls.Url``) in a child process (see the
    module rules). ``prompter``: a ``prompt_time.PromptClock`` (or None: no questions can be
    answered); ``steps`` gets the progress texts as they come. ``data_directory``: the
    daemon's (the agent bundles are cached under it, ``agents_cache``)."""
    from mutagen_actors.agent.transports.prompt_time import within

    request = {"operation": operation, "url": _url_fields(url), "data_directory": data_directory,
               "log_path": log_path, "side": side, "prompting": prompter is not None}
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", MODULE, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        try:
            child.stdin.write(json.dumps(request).encode() + b"\n")
            await child.stdin.drain()
        except ConnectionError:
            pass  # the child is gone: no verdict (below)
        ready = await asyncio.wait_for(_next(child), start_timeout)
        if ready is None or not ready.get("ready"):
            await _verdict(child, ready)  # raises: no verdict, or an error
            return
        line = await within(_conversation(child, prompter, steps), timeout, prompter)
        await _verdict(child, line)
    finally:
        if child.returncode is None:
            try:
                child.kill()
            except ProcessLookupError:
                pass
        await child.wait()


async def _next(child) -> Optional[dict]:
    line = await child.stdout.readline()
    if not line:
        return None
    try:
        return json.loads(line)
    except ValueError:
        return {"error": f"unreadable probe output: {line[:200]!r}", "internal": True}


async def _conversation(child, prompter, steps) -> Optional[dict]:
    """Steps and questions until the verdict line (None: the child ended without one)."""
    while True:
        line = await _next(child)
        if line is None or "done" in line or "error" in line:
            return line
        if "step" in line:
            if steps is not None:
                steps.append(str(line["step"]))
        elif "prompt" in line:
            kind, message, echo = line["prompt"]
            answer = await prompter(kind, message, echo) if prompter is not None else None
            try:
                child.stdin.write(json.dumps({"answer": answer}).encode() + b"\n")
                await child.stdin.drain()
            except ConnectionError:
                pass  # the child is gone: its end of output comes next


async def _verdict(child, line: Optional[dict]) -> None:
    if line is not None and line.get("done"):
        return
    if line is not None and "error" in line:
        raise ProbeFailed(str(line["error"]), bool(line.get("internal")))
    status = child.returncode if line is not None else await child.wait()
    raise ProbeFailed(f"the connect's helper process ended without an answer (exit status "
                      f"{status})", internal=True)


# ---------------------------------------------------------------------------- child side


class _Steps(list):
    """A ``steps`` list that also reports each step to the daemon."""

    def __init__(self, send):
        super().__init__()
        self._send = send

    def append(self, text) -> None:
        super().append(text)
        self._send({"step": text})


async def _child(out) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def send(message: dict) -> None:
        out.write(json.dumps(message).encode() + b"\n")

    request = json.loads(await reader.readline())
    import structlog

    from mutagen_actors.actors.runtime import logs
    from mutagen_actors.agent.remote_endpoint_actor import (
        RemoteUnavailable,
        agents_cache,
        probe_endpoint,
    )
    from mutagen_actors.agent.transports import TransportError, for_url

    from .urls import Url

    logs.configure(request["log_path"], logs.level_from_environment(), actor="probe",
                   side=request["side"])
    log = structlog.get_logger("supervisor.probe")
    url = Url(**request["url"])
    asking = asyncio.Lock()

    async def prompter(kind: str, message: str, echo: bool) -> Optional[str]:
        async with asking:
            send({"prompt": [kind, message, echo]})
            line = await reader.readline()
        return json.loads(line).get("answer") if line else None

    send({"ready": True})
    try:
        if request["operation"] == "endpoint":
            await probe_endpoint(url, cache_directory=agents_cache(request["data_directory"]),
                                 log=log,
                                 steps=_Steps(send),
                                 prompter=prompter if request["prompting"] else None)
        elif request["operation"] == "ssh":
            transport = await for_url(url, prompter=prompter if request["prompting"] else None)
            await transport.close()
        else:
            raise ValueError(f"unknown probe operation {request['operation']!r}")
    except (RemoteUnavailable, TransportError) as error:
        send({"error": str(error), "internal": False})
        return
    except Exception as error:  # noqa: BLE001 - reported to the daemon, which says it failed
        log.exception("remote probe failed")
        send({"error": f"{type(error).__name__}: {error}", "internal": True})
        return
    send({"done": True})


def main() -> None:
    # The protocol owns the original stdout; anything printed goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    asyncio.run(_child(out))


if __name__ == "__main__":
    main()
