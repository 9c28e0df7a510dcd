"""An unknown SSH host key asked on the terminal of ``forward create`` / ``forward resume`` (the
real CLI under a pseudo-terminal, the private sshd, a real daemon whose ``~/.ssh`` knows no key):
"yes" trusts it and the forward works; "no" refuses with one line and leaves no session."""

from __future__ import annotations

import os
import shutil

import pytest

from forward.servers import EchoServer
from forwardsession.conftest import echo_once, free_port
from remotesync.terminal import HOST_KEY_QUESTION, Terminal, error_lines


@pytest.fixture
def unknown_key_daemon(forward_daemon, sshd):
    """A daemon whose ``~/.ssh`` reaches the private sshd as ``testhost`` but knows no key."""
    target = os.path.join(forward_daemon.home, ".ssh")
    os.makedirs(target, mode=0o700)
    shutil.copy(os.path.join(sshd.client.directory, "config"), os.path.join(target, "config"))
    open(os.path.join(target, "known_hosts"), "w").close()
    return forward_daemon


def known_hosts(daemon) -> str:
    with open(os.path.join(daemon.home, ".ssh", "known_hosts")) as handle:
        return handle.read()


def test_forward_create_answered_no_then_resume_answered_yes(unknown_key_daemon, sshd):
    daemon = unknown_key_daemon
    echo = EchoServer("tcp:127.0.0.1:0")
    source = f"tcp:127.0.0.1:{free_port()}"
    try:
        terminal = Terminal(daemon, "forward", "create", "-n", "asked", source,
                            f"testhost:{echo.endpoint}")
        question = terminal.expect(HOST_KEY_QUESTION)
        assert f"host '[127.0.0.1]:{sshd.port}' can't be established" in question
        terminal.type("no")
        status, text = terminal.finish()
        assert status == 1, text
        errors = error_lines(text)
        assert len(errors) == 1 and "destination" in errors[0] and "was not accepted" in errors[0]
        assert daemon.sessions() == [] and known_hosts(daemon) == ""

        daemon.forward("create", "--paused", "-n", "asked", source, f"testhost:{echo.endpoint}")
        terminal = Terminal(daemon, "forward", "resume", "asked")
        terminal.expect(HOST_KEY_QUESTION)
        terminal.type("yes")
        status, text = terminal.finish()
        assert status == 0, text
        assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 " in known_hosts(daemon)
        assert echo_once(source, b"through ssh after the key was trusted")
    finally:
        echo.close()
