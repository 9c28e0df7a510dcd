"""The real ``mutagen-actors forward`` CLI on bad input: one ``Error:`` line on stderr, exit 1,
and the daemon is never contacted (its data directory is not even created)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture
def run(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    data_dir = tmp_path / "data"
    env = {**os.environ, "HOME": str(home), "MUTAGEN_ACTORS_DATA_DIRECTORY": str(data_dir)}

    def run(*args: str):
        return subprocess.run([sys.executable, "-m", "mutagen_actors.cli", *args], env=env,
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)

    run.data_dir = data_dir
    return run


S, DST = "tcp:127.0.0.1:8080", "tcp:127.0.0.1:3000"
BAD = [
    (("create", "tcp:localhost:99999", DST),
     "Error: source: invalid forwarding endpoint 'tcp:localhost:99999': port '99999'"),
    (("create", S, "tcp:localhost"), "Error: destination: invalid forwarding endpoint 'tcp:localhost': missing port"),
    (("create", "unix:/" + "a" * 120, DST), "Error: source: unix socket path too long"),
    (("create", S, S), "Error: source and destination are the same endpoint"),
    (("create", S, DST, "--socket-overwrite-mode", "x"),
     "Error: --socket-overwrite-mode: invalid socket overwrite mode 'x'"),
    (("create", S, DST, "--socket-permission-mode-destination", "9"),
     "Error: --socket-permission-mode-destination: invalid socket permission mode '9'"),
    (("create", S, DST, "-n", "a b"), "Error: --name: invalid session name 'a b'"),
    (("create", S, DST, "-l", "bad key"), "Error: --label: invalid label key 'bad key'"),
    (("create", S, DST, "-c", "missing.yml"), "Error: invalid configuration file"),
    (("create", S), "Error: Missing argument 'DESTINATION'"),
    (("create", S, DST, "--mode", "two-way-safe"), "Error: No such option"),
    (("pause",), "Error: no selection mechanisms present"),
    (("terminate", "x", "--all"), "Error: multiple selection mechanisms present"),
    (("resume", "--label-selector", "a in"), "Error: --label-selector: invalid label selector"),
    (("list", "x", "--label-selector", "k"), "Error: multiple selection mechanisms present"),
    (("monitor", "--label-selector", "!"), "Error: --label-selector: invalid label selector"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[f"{i}-{a[0]}" for i, (a, _) in enumerate(BAD)])
def test_bad_input_is_one_line_and_never_reaches_the_daemon(run, args, message):
    result = run("forward", *args)
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stdout == ""
    assert not run.data_dir.exists(), "the daemon must not be started for bad input"


def test_forward_help_lists_the_commands(run):
    result = run("forward", "--help")
    assert result.returncode == 0
    for name in ("create", "list", "monitor", "pause", "resume", "terminate"):
        assert f"  {name} " in result.stdout
    create = run("forward", "create", "--help").stdout
    for flag in ("--socket-overwrite-mode-source", "--socket-owner-destination",
                 "--socket-group", "--socket-permission-mode", "--no-global-configuration",
                 "--configuration-file", "--paused", "--label", "--name"):
        assert flag in create
