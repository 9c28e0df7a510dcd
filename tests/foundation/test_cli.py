"""The CLI surface: help sections, versions, placeholders, the one error path."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest

from mutagen_actors.wire.messages.control import Welcome
from mutagen_actors.wire.stream import StreamServer
from mutagen_actors.wire.version import VERSION


def run(*args, env=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "mutagen_actors.cli", *args],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_commands_in_sections():
    result = run("--help")
    assert result.returncode == 0
    text = result.stdout
    assert text.index("Sessions:") < text.index("\n  sync ") < text.index("Daemon:")
    for name in ("sync", "forward", "daemon", "version"):
        assert f"  {name}" in text
    assert "debug-session" not in run("daemon", "--help").stdout


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version(args):
    result = run(*args)
    assert (result.returncode, result.stdout) == (0, f"mutagen-actors version {VERSION}\n")


@pytest.mark.parametrize("group", [[], ["sync"], ["forward"], ["daemon"]])
def test_a_group_without_subcommand_prints_its_help(group):
    result = run(*group)
    assert result.returncode == 0 and result.stdout.startswith("Usage: ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["daemon", "status", "--bogus"], "Error: No such option"),
        (["nonsense"], "Error: No such command 'nonsense'. (see `mutagen-actors --help`)"),
        (["daemon", "log", "--lines", "-3"], "Error: Invalid value for '-n' / '--lines'"),
    ],
)
def test_failures_are_one_line_on_stderr_with_exit_status_1(args, message):
    result = run(*args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(message)
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_relative_data_directory_is_refused():
    result = run("daemon", "status", env={"MUTAGEN_ACTORS_DATA_DIRECTORY": "relative/dir"})
    assert result.returncode == 1
    assert result.stderr == ("Error: MUTAGEN_ACTORS_DATA_DIRECTORY must be an absolute path "
                             "(got 'relative/dir')\n")


def test_stale_socket_without_daemon_means_not_running(daemon):
    os.makedirs(os.path.dirname(daemon.socket), mode=0o700)
    import socket

    stale = socket.socket(socket.AF_UNIX)
    stale.bind(daemon.socket)
    stale.close()  # the file stays, nobody listens: like a daemon killed with -9
    result = daemon.cli("daemon", "status")
    assert (result.returncode, result.stdout) == (3, "Daemon: not running\n")
    started = daemon.cli("daemon", "start", check=True)
    assert started.stdout.startswith("Daemon started")


def test_daemon_log_prints_the_log(daemon):
    assert daemon.cli("daemon", "log").stderr.startswith("Error: no log yet at ")
    daemon.start()
    result = daemon.cli("daemon", "log", "-n", "100", check=True)
    assert '"event": "daemon started"' in result.stdout


def test_version_mismatch_is_reported(daemon):
    """A daemon of another version (a fake one here) makes the CLI say so clearly."""
    os.makedirs(os.path.dirname(daemon.socket), mode=0o700)
    os.chmod(daemon.data_dir, 0o700)
    ready = threading.Event()
    stop = None

    def serve():
        nonlocal stop

        async def main():
            nonlocal stop
            stop = asyncio.Event()

            async def handler(body):
                return Welcome("0.0.1-old", os.getpid())

            server = StreamServer(daemon.socket, handler)
            await server.start()
            ready.set()
            await stop.wait()
            await server.close()

        loop = asyncio.new_event_loop()
        thread_loop[0] = loop
        loop.run_until_complete(main())
        loop.close()

    thread_loop = [None]
    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(10)
        result = daemon.cli("daemon", "status")
        assert result.returncode == 1
        assert result.stderr == "Error: client/daemon version mismatch (daemon restart recommended)\n"
    finally:
        thread_loop[0].call_soon_threadsafe(stop.set)
        thread.join(10)
