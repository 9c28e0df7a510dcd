"""Diagnostic actors for ``daemon debug-session`` and the tests (no sync logic)."""

from __future__ import annotations

import asyncio
import time

from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages.actor import Sleep

from .actor import Actor


class DebugActor(Actor):
    """Answers heartbeats and statistics; ``Sleep(seconds)`` keeps it busy. With
    ``args["crash_on_start"]`` it raises in ``on_start`` on every start; with
    ``args["hang_on_exit"]`` too, its interpreter then hangs while shutting down (a worker thread
    of the default executor that does not finish, as a DNS lookup that never answers would)."""

    async def on_start(self) -> None:
        if self.context.args.get("hang_on_exit"):
            asyncio.get_running_loop().run_in_executor(None, time.sleep, 120.0)
        if self.context.args.get("crash_on_start"):
            raise RuntimeError("crash on start requested (diagnostic actor)")

    async def handle(self, message):
        if isinstance(message, Sleep):
            await asyncio.sleep(min(message.seconds, 60.0))
            return None
        raise NotHandled
