"""The real ``mutagen-actors sync`` CLI on bad input: one ``Error:`` line on stderr, exit 1, and
the daemon is never contacted (its data directory is not even created)."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from mutagen_actors.cli.sync_commands import StatusLine


@pytest.fixture
def run(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    data_dir = tmp_path / "data"
    env = {**os.environ, "HOME": str(home), "MUTAGEN_ACTORS_DATA_DIRECTORY": str(data_dir)}

    def run(*args: str):
        result = subprocess.run([sys.executable, "-m", "mutagen_actors.cli", *args], env=env,
                                capture_output=True, text=True, timeout=60, cwd=tmp_path)
        return result

    run.data_dir = data_dir
    run.home = home
    return run


BAD = [
    (("sync", "create", "a", "b", "-m", "bogus"), "Error: --mode: invalid synchronization mode 'bogus'"),
    (("sync", "create", "a", "b", "--sync-mode", "x"), "Error: --mode: invalid synchronization mode 'x'"),
    (("sync", "create", "a", "b", "-n", "9lives"), "Error: --name: invalid session name '9lives'"),
    (("sync", "create", "a", "b", "-l", "ok,bad key"), "Error: --label: invalid label key 'bad key'"),
    (("sync", "create", "host:", "b"), "Error: alpha: invalid URL 'host:': empty path"),
    (("sync", "create", "same", "./same"), "Error: alpha and beta are the same directory"),
    (("sync", "create", "outer", "outer/inner"), "Error: beta ("),
    (("sync", "create", "outer/inner", "outer"), "Error: alpha ("),
    (("sync", "create", "a", "b", "--default-file-mode", "0755"),
     "Error: --default-file-mode: invalid default file mode 0755: it may not contain executable bits"),
    (("sync", "create", "a", "b", "-i", "{x,y}"), "Error: --ignore: invalid ignore pattern '{x'"),
    (("sync", "create", "a", "b", "--ignore-vcs", "--no-ignore-vcs"),
     "Error: conflicting VCS ignore behavior specified"),
    (("sync", "create", "a", "b", "-c", "missing.yml"), "Error: invalid configuration file"),
    (("sync", "create", "a"), "Error: Missing argument 'BETA'"),
    (("sync", "create", "a", "b", "--no-such-flag"), "Error: No such option"),
    (("sync", "pause"), "Error: no selection mechanisms present"),
    (("sync", "terminate", "x", "--all"), "Error: multiple selection mechanisms present"),
    (("sync", "flush", "--label-selector", "a=b", "-a"), "Error: multiple selection mechanisms present"),
    (("sync", "resume", "--label-selector", "a in"), "Error: --label-selector: invalid label selector"),
    (("sync", "reset"), "Error: no selection mechanisms present"),
    (("sync", "list", "x", "--label-selector", "k"), "Error: multiple selection mechanisms present"),
    (("sync", "monitor", "--label-selector", "!"), "Error: --label-selector: invalid label selector"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a[1:3]) for a, _ in BAD])
def test_bad_input_is_one_line_and_never_reaches_the_daemon(run, args, message):
    result = run(*args)
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr
    assert result.stdout == ""
    assert not run.data_dir.exists()  # no daemon was started (autostart would create it)


def test_bad_global_configuration_is_reported(run):
    (run.home / ".mutagen-actors.yml").write_text("sync:\n  defaults:\n    mode: sideways\n")
    result = run("sync", "create", "a", "b")
    assert result.returncode == 1
    assert "sync.defaults.mode: invalid synchronization mode 'sideways'" in result.stderr
    assert not run.data_dir.exists()


def test_help_lists_the_subcommands_and_flags(run):
    result = run("sync")
    assert result.returncode == 0
    for name in ("create", "list", "monitor", "flush", "pause", "resume", "reset", "terminate"):
        assert name in result.stdout
    create = run("sync", "create", "--help").stdout
    for flag in ("--sync-mode", "--ignore-vcs", "--no-ignore-vcs", "--default-owner-beta",
                 "--watch-polling-interval-alpha", "--max-staging-file-size", "--probe-mode-beta",
                 "--compression-alpha", "--no-global-configuration", "--configuration-file"):
        assert flag in create
    assert "--skip-wait" in run("sync", "flush", "--help").stdout


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_status_line_on_a_terminal_rewrites_in_place():
    stream = Stream(tty=True)
    line = StatusLine(stream)
    line.show("Status: Scanning files")
    line.show("Status: Scanning files")  # unchanged: nothing written
    line.show("Status: Watching")
    line.clear()
    assert stream.getvalue() == ("\rStatus: Scanning files" + "\rStatus: Watching" + " " * 6
                                 + "\r" + " " * 16 + "\r")


def test_status_line_elsewhere_prints_one_line_per_change():
    stream = Stream(tty=False)
    line = StatusLine(stream)
    for text in ("a", "a", "b", "a"):
        line.show(text)
    line.finish()
    assert stream.getvalue() == "a\nb\na\n"
