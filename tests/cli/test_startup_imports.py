"""A command that only talks to a running daemon starts fast: it does not import asyncio, the
configuration/ignore machinery, the whole message schema, ZeroMQ or structlog (the CLI's start-up
was mostly imports).

Each command runs in a fresh interpreter against a real daemon; the interpreter reports the
command's exit status and which of those modules it had loaded when the command finished.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from foundation.conftest import processes_of, wait_until

from .conftest import SyncDaemon

HEAVY = (
    "asyncio",
    "yaml",
    "zmq",
    "structlog",
    "subprocess",
    "mutagen_actors.supervisor.configuration",
    "mutagen_actors.actors.sync.ignore",
    "mutagen_actors.cli.sync_arguments",
    "mutagen_actors.cli.forward_arguments",
    "mutagen_actors.wire.schema",  # the whole schema: the client decodes with the control subset
)

PROBE = """
import json, sys
from mutagen_actors.cli.main import main
status = 0
try:
    main(sys.argv[2:])
except SystemExit as done:
    status = done.code
heavy = [name for name in json.loads(sys.argv[1]) if name in sys.modules]
sys.stderr.write("\\nPROBE " + json.dumps({"status": status, "heavy": heavy}) + "\\n")
"""


@pytest.fixture(scope="module")
def running_daemon():
    root = tempfile.mkdtemp(prefix="ma-", dir="/tmp")  # short: unix socket paths
    handle = SyncDaemon(os.path.join(root, "data"))
    handle.home = os.path.join(root, "home")
    os.mkdir(handle.home)
    handle.cli("daemon", "start", check=True)
    yield handle
    for pid in processes_of(handle.data_dir):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    wait_until(lambda: not processes_of(handle.data_dir), 10, what="test processes to die")
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("command", [
    ("sync", "list"),
    ("sync", "list", "--json"),
    ("sync", "list", "--label-selector", "team=web"),
    ("sync", "flush", "--all"),
    ("sync", "pause", "--all"),
    ("forward", "list"),
    ("forward", "list", "--long"),
    ("forward", "terminate", "--all"),
    ("daemon", "status"),
    ("daemon", "status", "--json"),
    ("version",),
])
def test_plain_command_does_not_import_heavy_modules(running_daemon, command):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *command],
        env=running_daemon.env, capture_output=True, text=True, timeout=60)
    probe = json.loads(result.stderr.rsplit("PROBE ", 1)[1])
    assert probe["status"] in (0, None), (result.stdout, result.stderr)
    assert probe["heavy"] == [], f"`{' '.join(command)}` imported {probe['heavy']}"
