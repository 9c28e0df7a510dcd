"""StageChunks reach a remote root relayed, not decoded, by the daemon-side endpoint actor
(``agent.remote_endpoint_actor``, ``RELAY``): the agent decodes and validates them. A sender whose
StageChunks does not validate gets the agent's clear refusal as its reply (not silence until its
deadline), and the session's link is not hurt by it."""

from __future__ import annotations

import os
import shutil

import msgspec
import zmq

from mutagen_actors.supervisor.datadir import Paths
from mutagen_actors.supervisor.sync_manager import mailbox_token
from mutagen_actors.wire import codec
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages import sync as sm
from mutagen_actors.wire.messages.base import ErrorReply
from mutagen_actors.wire.version import PROTOCOL_VERSION

from .conftest import ssh_url, tree, wait_same, wait_until, write


def _exchange(endpoint: str, frame: bytes, timeout: float = 30.0):
    """Send one frame to a mailbox as a stager does; the decoded reply envelope."""
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
    try:
        socket.connect(endpoint)
        socket.send(frame)
        return codec.decode(socket.recv())
    finally:
        socket.close(linger=0)
        context.term()


def test_a_stage_chunks_the_agent_cannot_read_is_refused_to_its_sender(remote_sync, sshd,
                                                                        local_root):
    remote_root = os.path.join(sshd.home, "project-relay")
    shutil.rmtree(remote_root, ignore_errors=True)
    write(local_root, "seed.txt", "seed")
    identifier = remote_sync.create_urls(sm.EndpointUrl(path=local_root), ssh_url("project-relay"))
    try:
        wait_same(local_root, remote_root)
        beta = Paths(remote_sync.daemon.data_dir).mailbox(mailbox_token(identifier, "beta"))

        bad = msgspec.msgpack.encode([PROTOCOL_VERSION, 41, 0, ["StageChunks", [["p", 1, 2]]]])
        reply = _exchange(beta, bad)
        assert reply.reply_to == 41
        assert isinstance(reply.body, ErrorReply) and reply.body.code == "protocol", reply.body
        assert reply.body.message.startswith("invalid message:"), reply.body.message

        # a well-formed one is answered by the agent's endpoint (nothing was begun: refused
        # per file or acknowledged, never a protocol error)
        good = codec.encode(m.StageChunks([]), id=42)
        reply = _exchange(beta, good)
        assert reply.reply_to == 42 and not (isinstance(reply.body, ErrorReply)
                                             and reply.body.code == "protocol"), reply.body

        write(local_root, "after.txt", "still syncing")  # the link was not hurt
        wait_until(lambda: tree(remote_root).get("after.txt") == ("file", b"still syncing", False),
                   30, what="a later change to reach the remote")
    finally:
        remote_sync.command(sm.SyncTerminate, identifier)
