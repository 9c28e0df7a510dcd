"""The daemon never trusts its peer: bad create requests sent straight to the control socket
(not through the CLI's checks) are refused with a clear message and create nothing. Commands
answer in bounded time even when an actor hangs."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mutagen_actors.wire.messages import sync as sm

from .conftest import Sync, wait_same, write


def create_message(alpha, beta, name="", labels=None, **configuration):
    return sm.SyncCreate(alpha, beta, name, labels or {}, False,
                         sm.SyncConfiguration(**configuration))


def local(path: str) -> sm.EndpointUrl:
    return sm.EndpointUrl(path=path)


@pytest.mark.parametrize("build, message", [
    (lambda a, b: create_message(local(a), local(a)), "alpha and beta are the same path"),
    (lambda a, b: create_message(local(os.path.join(b, "sub")), local(b)), "is inside beta"),
    (lambda a, b: create_message(local(a), local(os.path.join(a, "x"))), "is inside alpha"),
    (lambda a, b: create_message(sm.EndpointUrl(protocol="ftp", host="h", path="/x"), local(b)),
     "unknown endpoint protocol 'ftp'"),
    (lambda a, b: create_message(local(a), local(b), mode="sometimes"),
     "invalid synchronization mode 'sometimes'"),
    (lambda a, b: create_message(local(a), local(b), name="1abc"), "invalid session name"),
    (lambda a, b: create_message(local(a), local(b), labels={"-bad": "x"}), "invalid label key"),
    (lambda a, b: create_message(local(a), local(b), ignores=["[oops"]),
     "invalid ignore pattern"),
])
def test_bad_create_is_refused_and_creates_nothing(shared_sync: Sync, roots, build, message):
    alpha, beta = roots
    before = [s.identifier for s in shared_sync.list()]
    assert message in shared_sync.refused(build(alpha, beta))
    assert [s.identifier for s in shared_sync.list()] == before


def test_a_root_that_does_not_exist_yet_is_valid(shared_sync: Sync, roots):
    alpha, beta = roots
    write(alpha, "a.txt", "a")
    os.rmdir(beta)
    identifier = shared_sync.create(alpha, beta)
    wait_same(alpha, beta)  # created when content arrived
    shared_sync.command(sm.SyncTerminate, identifier)


def test_list_answers_while_the_reconciler_hangs(shared_sync: Sync, roots):
    alpha, beta = roots
    identifier = shared_sync.create(alpha, beta)
    shared_sync.wait_status(identifier, "watching")
    pid = shared_sync.actor_pid(identifier, "reconciler")
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        state = shared_sync.state(identifier)
        assert time.monotonic() - started < 3.0
        assert state.status == "watching"  # the last state it published
    finally:
        os.kill(pid, signal.SIGCONT)
    shared_sync.command(sm.SyncTerminate, identifier)
