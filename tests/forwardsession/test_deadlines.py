"""Every forward command answers: the CLI waits longer than the daemon's own bounded waits
behind that command, so the user reads the daemon's reason, never "no answer"."""

from __future__ import annotations

import pytest

from mutagen_actors.cli import forward_commands
from mutagen_actors.supervisor import forward_manager as fm

# ActorProcess.stop: ``shutdown`` for the Stop request, then that again, 1 s after SIGTERM, 5 s after SIGKILL
STOP_BOUND = 2 * fm.FORWARDER_SHUTDOWN + 1.0 + 5.0


@pytest.mark.parametrize("command, daemon_bound, cli_timeout", [
    ("create (remote)", fm.REMOTE_LISTEN_TIMEOUT + STOP_BOUND, forward_commands.CREATE_TIMEOUT),
    ("create (local)", fm.LISTEN_TIMEOUT + STOP_BOUND, forward_commands.CREATE_TIMEOUT),
    ("resume (remote)", STOP_BOUND + fm.REMOTE_LISTEN_TIMEOUT, forward_commands.CONTROL_TIMEOUT),
])
def test_the_cli_outwaits_the_daemon(command, daemon_bound, cli_timeout):
    assert cli_timeout > daemon_bound, command
