"""How a failed SSH connect reads: one short phrase from the errno, never asyncio's
"Connect call failed ('127.0.0.1', 22)" (pure; the closed-port case end to end is in
``tests/remotesync/test_ssh_failures.py``)."""

from __future__ import annotations

import asyncio
import errno
import socket

import asyncssh
import pytest

from mutagen_actors.agent.transports.ssh import connect_failure_reason

from . import infra


@pytest.mark.parametrize("error, reason", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 2222)"),
     "connection refused"),
    (OSError(errno.ENETUNREACH, "Connect call failed ('10.9.9.9', 22)"), "network is unreachable"),
    (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 22, 0, 0), "
             "[Errno 111] Connect call failed ('127.0.0.1', 22)"), "connection refused"),
    (OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 22), "
             "[Errno 99] Cannot assign requested address"),
     "connection refused; cannot assign requested address"),
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "name or service not known"),
    (OSError("something\nodd"), "something odd"),
    (asyncssh.ConnectionLost("Connection lost"), "connection lost"),
])
def test_connect_failures_read_as_one_short_phrase(error, reason):
    assert connect_failure_reason(error) == reason


def test_a_closed_port_reads_connection_refused():
    """What asyncio really raises for a closed loopback port gets the same phrase."""
    port = infra.free_port()

    async def dial():
        try:
            await asyncio.open_connection("127.0.0.1", port)
        except OSError as error:
            return error
        raise AssertionError(f"port {port} accepted a connection")

    assert connect_failure_reason(asyncio.run(dial())) == "connection refused"
