"""What the sync and forward managers share (``supervisor.manager_common``), on a small table of
sessions whose states are their signatures; the managers themselves are tested end to end."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from mutagen_actors.supervisor.manager_common import (
    RecordFields,
    SessionManagerBase,
    validate_identity,
)
from mutagen_actors.wire.messages.sync import Selection, SyncList


@dataclass
class _Record:
    id: str
    name: str
    created: float


@dataclass
class _Create:
    labels: dict = field(default_factory=dict)


@dataclass
class _Session(RecordFields):
    record: _Record
    create: _Create
    signature: tuple = ()


class _Table(SessionManagerBase):
    def __init__(self, *sessions: _Session):
        self.sessions = {s.id: s for s in sessions}
        self.index = 1
        self._signatures: dict = {}
        self.acted: list[str] = []

    async def _states(self, sessions):
        for session in sessions:
            self._note_signature(session.id, session.signature)
        return [s.id for s in sessions]

    async def act(self, session):
        self.acted.append(session.id)


def _table() -> _Table:
    return _Table(_Session(_Record("s1", "one", 1.0), _Create({"team": "a"})),
                  _Session(_Record("s2", "", 2.0), _Create({"team": "b"})))


def test_record_fields():
    session = _table().sessions["s1"]
    assert (session.id, session.name, session.created, session.labels) == \
        ("s1", "one", 1.0, {"team": "a"})


@pytest.mark.parametrize("name, labels, error", [
    ("web", {"a": "1"}, None),
    ("", {}, None),
    ("1bad", {}, "name"),
    ("web", {"": "x"}, "label"),
])
def test_validate_identity(name, labels, error):
    if error is None:
        validate_identity(name, labels)
    else:
        with pytest.raises(ValueError, match=error):
            validate_identity(name, labels)


@pytest.mark.parametrize("selection, default_all, expected", [
    (Selection(), True, ["s1", "s2"]),
    (Selection(all=True), False, ["s1", "s2"]),
    (Selection(specifications=["one"]), False, ["s1"]),
    (Selection(label_selector="team=b"), False, ["s2"]),
])
def test_select(selection, default_all, expected):
    assert [s.id for s in _table()._select(selection, default_all)] == expected


def test_select_refuses_no_mechanism_unless_default_all():
    with pytest.raises(ValueError, match="no selection mechanisms"):
        _table()._select(Selection())


def test_act_runs_in_order_and_moves_the_index():
    table = _table()
    ids = asyncio.run(table._act(Selection(all=True), table.act))
    assert ids == table.acted == ["s1", "s2"] and table.index == 2


def test_the_index_moves_only_when_a_signature_changes():
    table = _table()
    asyncio.run(table._states(list(table.sessions.values())))
    first = table.index
    asyncio.run(table._states(list(table.sessions.values())))
    assert first == 3 and table.index == 3
    table.sessions["s2"].signature = ("changed",)
    asyncio.run(table._states(list(table.sessions.values())))
    assert table.index == 4


@pytest.mark.parametrize("after_index, wait, held", [
    (0, 5.0, False),   # no long poll: answered at once
    (1, 5.0, False),   # the index already moved past 1 (first look at the states)
    (99, 0.2, True),   # held for ``wait`` when nothing changes
])
def test_long_poll(after_index, wait, held):
    table = _table()
    started = time.monotonic()
    states, index = asyncio.run(table._long_poll(SyncList(Selection(), after_index, wait)))
    took = time.monotonic() - started
    assert states == ["s1", "s2"] and index == table.index
    assert (took >= wait) if held else (took < wait)


def test_long_poll_answers_when_a_session_changes():
    table = _table()

    async def scenario():
        poll = asyncio.ensure_future(table._long_poll(SyncList(Selection(), 3, 30.0)))
        await asyncio.sleep(0.1)
        assert not poll.done()
        table.sessions["s1"].signature = ("new",)
        return await asyncio.wait_for(poll, 10)

    states, index = asyncio.run(scenario())
    assert index == 4 and states == ["s1", "s2"]
