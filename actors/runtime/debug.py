"""Diagnostic actors for ``daemon debug-session`` and the tests (no sync logic)."""

from __future__ import annotations

import asyncio

from mutagen_actors.wire.handling import NotHandled
from mutagen_actors.wire.messages.actor import Sleep

from .actor import Actor


class DebugActor(Actor):
    """Answers heartbeats and statistics; ``Sleep(seconds)`` keeps it busy. With
    ``args["crash_on_start"]`` it raises in ``on_start`` on every start."""

    async def on_start(self) -> None:
        if self.context.args.get("crash_on_start"):
            raise RuntimeError("crash on start requested (diagnostic actor)")

    async def handle(self, message):
        if isinstance(message, Sleep):
            await asyncio.sleep(min(message.seconds, 60.0))
            return None
        raise NotHandled
