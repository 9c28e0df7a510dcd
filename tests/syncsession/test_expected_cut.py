"""``plan.expected_cut``: where the sender will cut a raw batch (it must agree with what
``Supplier.supply`` reads, which the last case checks against the real supplier)."""

from __future__ import annotations

import asyncio
import os

import pytest

from mutagen_actors.actors.syncsession.plan import expected_cut
from mutagen_actors.wire.messages.endpoint import SupplyRequest

from .pipeline import make_endpoint

D = b"d" * 16


def raw(path: str, offset: int = 0) -> SupplyRequest:
    return SupplyRequest(path, D, offset)


@pytest.mark.parametrize("batch, sizes, budget, expected", [
    ([raw("a"), raw("b")], {"a": 10, "b": 20}, 100, (True, None)),  # all whole
    ([raw("a"), raw("b")], {"a": 10, "b": 200}, 100, (True, 90)),  # the last is cut
    ([raw("big", 300)], {"big": 1000}, 100, (True, 400)),  # a middle piece
    ([raw("big", 900)], {"big": 1000}, 100, (True, None)),  # the last piece, exactly
    ([raw("empty")], {"empty": 0}, 100, (True, None)),
    ([raw("a"), raw("empty")], {"a": 100, "empty": 0}, 100, (False, None)),  # no budget left
    ([raw("a")], {}, 100, (False, None)),  # size unknown
    ([raw("a")], {"a": -1}, 100, (False, None)),
    ([raw("a"), raw("b")], {"a": 200, "b": 1}, 100, (False, None)),  # cut before the last
    ([SupplyRequest("a", D, 0, None, b"base")], {"a": 10}, 100, (False, None)),  # a delta
])
def test_expected_cut(batch, sizes, budget, expected):
    assert expected_cut(batch, sizes, budget) == expected


def test_expected_cut_agrees_with_the_supplier(tmp_path):
    root = str(tmp_path / "root")
    endpoint = make_endpoint(root, str(tmp_path / "data"), "alpha")
    sizes = {"a": 700, "b": 0, "c": 2500, "d": 50}
    for name, size in sizes.items():
        with open(os.path.join(root, name), "wb") as stream:
            stream.write(os.urandom(size))
    loop = asyncio.new_event_loop()  # the endpoint's tasks live in one loop
    loop.run_until_complete(endpoint.start())
    try:
        for batch in ([raw("a"), raw("b"), raw("c")], [raw("c", 1000)], [raw("c", 2000),
                                                                         raw("d")]):
            known, cut = expected_cut(batch, sizes, 1024)
            chunks = endpoint.supply(batch, 1024)
            assert known
            assert len(chunks) == len(batch)
            last = chunks[-1]
            assert cut == (None if last.eof else last.offset + len(last.data))
    finally:
        loop.run_until_complete(endpoint.stop())
        loop.close()
