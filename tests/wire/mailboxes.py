"""A real ``Mailbox`` (ROUTER on an ipc socket in a fresh /tmp directory) with a ``DealerClient``
connected to it, for tests of what the mailbox hands over and sends back."""

from __future__ import annotations

import contextlib
import os
import tempfile

import zmq.asyncio

from mutagen_actors.wire.sockets import DealerClient, Mailbox


@contextlib.asynccontextmanager
async def served_mailbox(relay: frozenset = frozenset()):
    """Yields ``(mailbox, client)``; ``relay``: the types the mailbox hands over undecoded.
    Everything is closed and the directory removed on the way out."""
    directory = tempfile.mkdtemp(prefix="mailbox-", dir="/tmp")
    context = zmq.asyncio.Context()
    mailbox = Mailbox(context, f"ipc://{directory}/mailbox")
    mailbox.relay = relay
    mailbox.bind()
    client = DealerClient(context, mailbox.endpoint)
    try:
        yield mailbox, client
    finally:
        client.close()
        mailbox.close()
        context.destroy(linger=0)
        os.rmdir(directory)
