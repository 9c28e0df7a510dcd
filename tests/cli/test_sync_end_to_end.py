"""``mutagen-actors sync ...`` end to end: the real CLI, a real daemon, real directories.

What a user observes: create makes files appear on the other side; list/--long/--json show the
session; pause/resume/flush/reset/terminate do what the reference says (terminate leaves files
alone); a two-way-safe conflict is shown and resolved by deleting one copy; bad input is a clear
error, exit 1, and no session is created. Every wait polls a condition with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from foundation.conftest import wait_until

SYNC_TIMEOUT = 30.0


def write(path, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as stream:
        stream.write(text)


def read(path) -> str | None:
    try:
        with open(path) as stream:
            return stream.read()
    except FileNotFoundError:
        return None


def wait_content(path, text, what: str = "") -> None:
    wait_until(lambda: read(path) == text, SYNC_TIMEOUT, interval=0.02,
               what=what or f"{path} to contain {text!r}")


def test_lifecycle_through_the_cli(sync_daemon, tmp_path):
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    write(alpha / "src" / "main.py", "print('hi')\n")
    write(alpha / "README", "readme\n")
    created = sync_daemon.sync("create", str(alpha), str(beta), "--name", "web", "-l", "team=web,tier",
                               "-i", "*.tmp")
    assert created.stdout.startswith("Created session ") and created.stdout.count("\n") == 1
    identifier = created.stdout.strip().removeprefix("Created session ")
    assert identifier.startswith("sync_") and len(identifier) == 48, created.stdout
    wait_content(beta / "src" / "main.py", "print('hi')\n")
    wait_content(beta / "README", "readme\n")

    # list: human, long and JSON, by name, identifier and label selector
    session = sync_daemon.wait_session(lambda s: s["status"] == "watching" and s["alpha"]["scanned"],
                                       what="session watching")
    assert (session["identifier"], session["name"], session["labels"], session["paused"]) == \
        (identifier, "web", {"team": "web", "tier": ""}, False)
    assert session["alpha"]["url"] == str(alpha) and session["beta"]["url"] == str(beta)
    assert session["alpha"]["files"] == 2 and session["alpha"]["directories"] == 2
    assert session["ignore"]["paths"] == ["*.tmp"]
    human = sync_daemon.sync("list").stdout
    assert human.startswith("-" * 80 + "\nName: web\nIdentifier: " + identifier + "\n")
    assert "\tURL: " + str(alpha) in human and "\tConnected: Yes" in human
    assert "Status: Watching for changes" in human and human.endswith("-" * 80 + "\n")
    long = sync_daemon.sync("list", "--long", "web").stdout
    assert "Labels:\n\tteam: web\n\ttier: <empty>\n" in long
    assert "\tIgnores:\n\t\t*.tmp\n" in long and "\tSynchronization mode: Default (Two Way Safe)" in long
    for selector in ((identifier,), ("web",), ("--label-selector", "team in (web,api),tier")):
        assert [s["identifier"] for s in sync_daemon.sessions(*selector)] == [identifier]
    assert sync_daemon.sessions("--label-selector", "team!=web") == []
    missing = sync_daemon.sync("list", "nope", check=False)
    assert (missing.returncode, missing.stderr) == \
        (1, 'Error: specification "nope" did not match any sessions\n')

    # pause: nothing moves, flush is refused; resume + flush: it moves
    paused = sync_daemon.sync("pause", "web")
    assert f"Pausing session {identifier}..." in paused.stderr and paused.stdout == ""
    assert sync_daemon.sessions()[0]["paused"] is True
    assert "Status: [Paused]" in sync_daemon.sync("list").stdout
    write(alpha / "later.txt", "later\n")
    refused = sync_daemon.sync("flush", "web", check=False)
    assert refused.returncode == 1 and "paused" in refused.stderr
    assert read(beta / "later.txt") is None
    sync_daemon.sync("resume", "--label-selector", "team=web")
    sync_daemon.sync("flush", identifier)
    assert read(beta / "later.txt") == "later\n"  # the flush waited for a whole cycle

    # reset: the ancestor is forgotten; identical content is adopted, syncing continues
    sync_daemon.sync("reset", "--all")
    write(beta / "from-beta.txt", "beta\n")
    wait_content(alpha / "from-beta.txt", "beta\n")

    # terminate: the session is gone, files on disk stay as they were
    terminated = sync_daemon.sync("terminate", "web")
    assert f"Terminating session {identifier}..." in terminated.stderr
    assert sync_daemon.sync("list").stdout == "-" * 80 + "\nNo synchronization sessions found\n" + "-" * 80 + "\n"
    assert sync_daemon.sessions() == []
    for root in (alpha, beta):
        assert read(root / "src" / "main.py") == "print('hi')\n"
        assert read(root / "later.txt") == "later\n"


def test_paused_create_then_resume(sync_daemon, tmp_path):
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    write(alpha / "a.txt", "a\n")
    write(alpha / "debug.log", "ignored by the global configuration\n")
    write(os.path.join(sync_daemon.home, ".mutagen-actors.yml"),
          "sync:\n  defaults:\n    mode: two-way-resolved\n    ignore:\n      paths: ['*.log']\n")
    sync_daemon.sync("create", "--paused", str(alpha), str(beta), "-m", "one-way-replica",
                     "--watch-mode-beta", "no-watch")
    [session] = sync_daemon.sessions()
    assert (session["paused"], session["mode"], session["ignore"]) == \
        (True, "one-way-replica", {"paths": ["*.log"]})  # the flag beats the global file
    assert session["beta"]["watch"] == {"mode": "no-watch"} and "watch" not in session["alpha"]
    assert read(beta / "a.txt") is None
    sync_daemon.sync("resume", "--all")
    wait_content(beta / "a.txt", "a\n")
    sync_daemon.sync("flush", "--all")
    assert read(beta / "debug.log") is None


def test_two_way_safe_conflict_is_listed_and_resolved_by_deleting_one_copy(sync_daemon, tmp_path):
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    write(alpha / "c.txt", "alpha version\n")
    write(beta / "c.txt", "beta version\n")
    write(alpha / "other.txt", "other\n")
    sync_daemon.sync("create", str(alpha), str(beta))
    wait_content(beta / "other.txt", "other\n")  # everything else keeps syncing
    session = sync_daemon.wait_session(lambda s: s["conflicts"], what="a conflict")
    [conflict] = session["conflicts"]
    assert conflict["root"] == "c.txt"
    assert conflict["alphaChanges"][0]["new"]["kind"] == "file"
    assert conflict["betaChanges"][0]["new"]["kind"] == "file"
    assert "Conflicts: 1\n" in sync_daemon.sync("list").stdout
    long = sync_daemon.sync("list", "-l").stdout
    assert "\t(alpha) c.txt (<non-existent> -> File (" in long
    assert "\t(beta)  c.txt (<non-existent> -> File (" in long
    assert (read(alpha / "c.txt"), read(beta / "c.txt")) == ("alpha version\n", "beta version\n")
    os.remove(beta / "c.txt")
    wait_content(beta / "c.txt", "alpha version\n", "alpha's copy to be propagated")
    sync_daemon.wait_session(lambda s: not s["conflicts"], what="the conflict to disappear")


BAD_CREATE = [
    (("{a}", "{a}"), "Error: alpha and beta are the same directory"),
    (("{a}", "{a}/inner"), "Error: beta ("),
    (("{a}", "{b}", "-m", "sideways"), "Error: --mode: invalid synchronization mode 'sideways'"),
    (("{a}", "{b}", "-n", "-bad"), "Error: --name"),
    (("{a}", "{b}", "-l", "k=v v"), "Error: --label: invalid label value"),
    (("host:", "{b}"), "Error: alpha: invalid URL"),
    (("{a}", "{b}", "-c", "{a}/missing.yml"), "Error: invalid configuration file"),
]


def test_bad_input_creates_nothing(sync_daemon, tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    write(os.path.join(a, "keep.txt"), "keep\n")
    sync_daemon.sync("create", a, b, "-n", "existing")
    before = sync_daemon.sessions()
    for args, message in BAD_CREATE:
        result = sync_daemon.sync("create", *(arg.format(a=a, b=b) for arg in args), check=False)
        assert result.returncode == 1 and result.stderr.startswith(message), (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1
    remote = sync_daemon.sync("create", "host:/srv/x", b, check=False)  # refused by the daemon
    assert remote.returncode == 1 and remote.stderr.splitlines()[-1].startswith("Error: alpha: ")
    bad_selector = sync_daemon.sync("pause", "--label-selector", "a in (", check=False)
    assert bad_selector.returncode == 1 and "invalid label selector" in bad_selector.stderr
    after = sync_daemon.sessions()
    assert [s["identifier"] for s in after] == [s["identifier"] for s in before]
    assert after[0]["paused"] is False


def test_monitor_prints_the_header_then_status_lines_and_ends_on_ctrl_c(sync_daemon, tmp_path):
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    write(alpha / "x", "x")
    sync_daemon.sync("create", str(alpha), str(beta), "-n", "mon")
    process = subprocess.Popen([sys.executable, "-m", "mutagen_actors.cli", "sync", "monitor", "mon"],
                               env=sync_daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        lines = []
        deadline = time.monotonic() + SYNC_TIMEOUT
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line.rstrip("\n"))
            if line.startswith("Status: Watching for changes"):
                break
        assert lines[:2] == ["Name: mon", lines[1]] and lines[1].startswith("Identifier: sync_")
        assert "Alpha:" in lines and "Status: Watching for changes" in lines
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        process.stdout.close()
        process.stderr.close()
