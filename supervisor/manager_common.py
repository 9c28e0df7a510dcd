"""What the sync and forward session managers (``sync_manager``, ``forward_manager``) share.

- ``RecordFields``: mixin for a manager's per-session object holding ``record``
  (``persistence.SessionRecord``) and ``create`` (the session's create message): ``id``, ``name``,
  ``created`` from the record, ``labels`` from the create message (what ``selection`` matches).
- ``validate_identity(name, labels)``: a create's name and labels (``identity`` rules);
  raises ``ValueError`` naming the first bad one.
- ``SessionManagerBase``: for a manager with ``sessions`` (id -> session object), ``index`` (the
  state index ``list`` long-polls on) and ``_signatures`` (id -> last state signature), and an
  ``async _states(sessions)`` returning the sessions' states in order:
  ``_select`` (a wire ``Selection`` -> sessions; ``ValueError`` for a bad one),
  ``_note_signature`` (moves the index when a session's signature changed),
  ``_long_poll`` (``list``: states now, or once the index passes ``after_index``, at most
  ``wait`` seconds, capped at 60) and ``_act`` (run an action on each selected session in turn,
  then move the index; the ids acted on).
"""

from __future__ import annotations

import asyncio
import time

from . import identity, selection

LIST_POLL_INTERVAL = 0.05
LIST_WAIT_LIMIT = 60.0


class RecordFields:
    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def created(self) -> float:
        return self.record.created

    @property
    def labels(self) -> dict:
        return self.create.labels


def validate_identity(name: str, labels: dict) -> None:
    identity.validate_name(name)
    for key, value in labels.items():
        identity.validate_label_key(key)
        identity.validate_label_value(value, key)


class SessionManagerBase:
    def _select(self, chosen, default_all: bool = False) -> list:
        return selection.select(self.sessions.values(), chosen.specifications,
                                chosen.label_selector, chosen.all, default_all=default_all)

    def _note_signature(self, session_id: str, signature: tuple) -> None:
        if self._signatures.get(session_id) != signature:
            self._signatures[session_id] = signature
            self.index += 1

    async def _long_poll(self, message) -> tuple[list, int]:
        """``(states, index)`` for a list request (``selection``, ``after_index``, ``wait``)."""
        sessions = self._select(message.selection, default_all=True)
        deadline = time.monotonic() + max(0.0, min(message.wait, LIST_WAIT_LIMIT))
        while True:
            states = await self._states(sessions)
            if (message.after_index <= 0 or self.index > message.after_index
                    or time.monotonic() >= deadline):
                return states, self.index
            await asyncio.sleep(LIST_POLL_INTERVAL)
            sessions = [s for s in sessions if s.id in self.sessions]

    async def _act(self, chosen, action) -> list[str]:
        sessions = self._select(chosen)
        for session in sessions:
            await action(session)
        self.index += 1
        return [s.id for s in sessions]
