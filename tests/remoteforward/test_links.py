"""The pure parts of keeping remote sides connected (back-off, status word, the LISTEN body with
socket options) and ``RemoteLink``'s retry loop driven by a scripted remote."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from mutagen_actors.actors.forward.endpoints import ForwardingError
from mutagen_actors.actors.forward.links import RemoteLink, backoff_delays, session_status
from mutagen_actors.wire import forward_mux as fx
from mutagen_actors.wire.errors import ProtocolError


@pytest.mark.parametrize("arguments, expected", [
    ((), [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]),
    ((1.0, 3.0, 10.0), [1.0, 3.0, 9.0, 10.0, 10.0]),
    ((7.0, 2.0, 5.0), [5.0, 5.0]),
])
def test_backoff_doubles_up_to_a_ceiling(arguments, expected):
    assert list(itertools.islice(backoff_delays(*arguments), len(expected))) == expected


@pytest.mark.parametrize("source_remote, source_up, destination_remote, destination_up, status", [
    (False, True, False, True, "forwarding"),
    (False, True, True, True, "forwarding"),
    (False, True, True, False, "connecting-destination"),
    (True, False, False, True, "connecting-source"),
    (True, True, False, True, "forwarding"),
    (True, False, True, False, "connecting-source"),
    (True, True, True, False, "connecting-destination"),
    (True, True, True, True, "forwarding"),
])
def test_status_names_the_side_being_connected(source_remote, source_up, destination_remote,
                                               destination_up, status):
    assert session_status(source_remote, source_up, destination_remote, destination_up) == status


@pytest.mark.parametrize("endpoint, options, expected", [
    ("unix:/run/a.sock", None, ("unix:/run/a.sock", None)),
    ("tcp:127.0.0.1:80", None, ("tcp:127.0.0.1:80", None)),
    ("unix:/run/a.sock", {"overwrite_mode": "overwrite", "owner": "nobody", "group": "id:65534",
                          "permission_mode": 0o660, "reclaim": True},
     ("unix:/run/a.sock", {"overwrite_mode": "overwrite", "owner": "nobody",
                           "group": "id:65534", "permission_mode": 0o660, "reclaim": True})),
    ("unix:/x", {"reclaim": False},
     ("unix:/x", {"overwrite_mode": "", "owner": "", "group": "", "permission_mode": 0,
                  "reclaim": False})),
])
def test_listen_body_round_trip(endpoint, options, expected):
    assert fx.parse_listen_body(fx.listen_body(endpoint, options)) == expected


@pytest.mark.parametrize("body, message", [
    (b"unix:/a\0leave", "1 option fields"),
    (b"unix:/a\0leave\0\0\0\x39\x39\0", "not octal"),
    (b"\xff\xfe", "UTF-8"),
])
def test_a_malformed_listen_body_is_a_protocol_error(body, message):
    with pytest.raises(ProtocolError, match=message):
        fx.parse_listen_body(body)


class _Side:
    """A connected remote whose loss the test decides."""

    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()
        self.closed = False

    async def wait_lost(self) -> str:
        return await self.lost

    async def close(self) -> None:
        self.closed = True


async def _until(predicate, timeout: float = 5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


def test_link_retries_a_remote_that_is_down_then_reconnects_after_a_loss():
    async def scenario():
        outcomes = [ForwardingError("unable to connect to h: connection refused"),
                    ForwardingError("unable to connect to h: timed out"), None, None]
        sides, ups, downs = [], [], []

        async def connect():
            outcome = outcomes.pop(0)
            if outcome is not None:
                raise outcome
            side = _Side()
            sides.append(side)
            return side

        async def on_up(side):
            ups.append(side)

        link = RemoteLink("destination", "h", connect, on_up=on_up, on_down=lambda: downs.append(1),
                          delays=lambda: iter(lambda: 0.001, None))
        with pytest.raises(ForwardingError, match="refused"):
            await link.connect_once()  # the first start reports the failure itself
        assert not link.up and link.side is None
        link.start()
        await _until(lambda: link.up)
        assert link.attempts == 3 and ups == sides and link.last_error == ""
        sides[0].lost.set_result("the SSH connection to h was lost")
        await _until(lambda: len(sides) == 2 and link.up)
        assert sides[0].closed and downs == [1] and link.connections == 2
        await link.close()
        assert sides[1].closed and not link.up

    asyncio.run(scenario())


def test_a_failing_on_up_closes_the_side_and_counts_as_a_failed_attempt():
    async def scenario():
        sides = []
        refusals = [ForwardingError("cannot listen on unix:/s on h: /s already exists")]

        async def connect():
            sides.append(_Side())
            return sides[-1]

        async def on_up(side):
            if refusals:
                raise refusals.pop()

        link = RemoteLink("source", "h", connect, on_up=on_up,
                          delays=lambda: iter(lambda: 0.001, None))
        link.start()
        await _until(lambda: link.up)
        assert len(sides) == 2 and sides[0].closed and not sides[1].closed
        await link.close()

    asyncio.run(scenario())
