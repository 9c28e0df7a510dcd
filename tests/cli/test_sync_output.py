"""Formatting of sync sessions from constructed states: human list (short and long), JSON field
names, pluralization, caps, entries, the monitor line."""

from __future__ import annotations

import json

import pytest

from mutagen_actors.actors.sync.model import Change, Conflict, Entry, Problem
from mutagen_actors.cli import sync_output
from mutagen_actors.wire.messages.sync import (
    EndpointConfiguration,
    EndpointState,
    EndpointUrl,
    StagingProgress,
    SyncConfiguration,
    SyncSessionState,
)

ID = "sync_" + "a" * 43
D = "-" * 80
DIGEST = bytes.fromhex("00ff10")


def state(**overrides) -> SyncSessionState:
    values = dict(
        identifier=ID,
        created=1_700_000_000.25,
        status="watching",
        alpha=EndpointState(url=EndpointUrl(path="/home/me/app"), connected=True),
        beta=EndpointState(url=EndpointUrl(protocol="ssh", user="me", host="box", port=2222,
                                           path="~/app"), connected=False),
    )
    values.update(overrides)
    return SyncSessionState(**values)


def scanned(**overrides) -> EndpointState:
    values = dict(url=EndpointUrl(path="/a"), connected=True, scanned=True, directories=1,
                  files=1, symbolic_links=1, total_file_size=1500)
    values.update(overrides)
    return EndpointState(**values)


def text(lines) -> str:
    return "\n".join(lines)


def test_no_sessions():
    assert sync_output.list_lines([]) == [D, "No synchronization sessions found", D]
    assert sync_output.list_json([]) == []


def test_short_list_golden():
    one = state(name="web", alpha=scanned(url=EndpointUrl(path="/home/me/app"), directories=3,
                                          files=12, symbolic_links=0, total_file_size=2_345_678,
                                          scan_problems=[Problem("x", "bad")]),
                conflicts=[Conflict("c", [Change("c", None, Entry.file(DIGEST))], [])],
                last_error="lost connection")
    two = state(identifier="sync_" + "b" * 43, paused=True, status="disconnected")
    assert text(sync_output.list_lines([one, two])) == text([
        D,
        "Name: web",
        f"Identifier: {ID}",
        "Alpha:",
        "\tURL: /home/me/app",
        "\tConnected: Yes",
        "\tSynchronizable contents:",
        "\t\t3 directories",
        "\t\t12 files (2.3 MB)",
        "\t\t0 symbolic links",
        "\tScan problems: 1",
        "Beta:",
        "\tURL: me@box:2222:~/app",
        "\tConnected: No",
        "Conflicts: 1",
        "Last error: lost connection",
        "Status: Watching for changes",
        D,
        "Identifier: sync_" + "b" * 43,
        "Alpha:",
        "\tURL: /home/me/app",
        "\tConnected: Yes",
        "Beta:",
        "\tURL: me@box:2222:~/app",
        "\tConnected: No",
        "Status: [Paused]",
        D,
    ])


def test_watch_status_is_shown_when_known():
    lines = sync_output.session_lines(state(alpha=scanned(watch_state="polling (inotify watch limit reached)")))
    assert "\tWatch status: polling (inotify watch limit reached)" in lines
    assert sync_output.session_json(state(alpha=scanned(watch_state="x")))["alpha"]["watchState"] == "x"


@pytest.mark.parametrize("directories, files, links, size, expected", [
    (1, 1, 1, 5, ["1 directory", "1 file (5 B)", "1 symbolic link"]),
    (0, 0, 0, 0, ["0 directories", "0 files (0 B)", "0 symbolic links"]),
    (2, 3, 4, 1000, ["2 directories", "3 files (1.0 kB)", "4 symbolic links"]),
])
def test_counts_are_pluralized(directories, files, links, size, expected):
    lines = sync_output.session_lines(state(alpha=scanned(directories=directories, files=files,
                                                          symbolic_links=links,
                                                          total_file_size=size)))
    start = lines.index("\tSynchronizable contents:")
    assert lines[start + 1:start + 4] == ["\t\t" + e for e in expected]


def test_long_list_golden():
    configured = SyncConfiguration(
        mode="one-way-replica", ignores=["node_modules/", "*.pyc"], ignore_vcs=True,
        endpoint=EndpointConfiguration(max_staging_file_size=100_000_000, watch_mode="force-poll",
                                       watch_polling_interval=1, default_file_mode=0o644),
        beta=EndpointConfiguration(watch_mode="no-watch", default_owner="id:33"),
    )
    one = state(labels={"team": "web", "empty": ""}, configuration=configured,
                beta=EndpointState(url=EndpointUrl(protocol="docker", host="app", path="/var/www",
                                                   environment={"DOCKER_HOST": "unix:///d.sock"})),
                alpha=scanned(url=EndpointUrl(path="/home/me/app"),
                              transition_problems=[Problem("", "root trouble"), Problem("b", "x")]))
    assert text(sync_output.list_lines([one], long=True)) == text([
        D,
        f"Identifier: {ID}",
        "Labels:",
        "\tempty: <empty>",
        "\tteam: web",
        "Configuration:",
        "\tSynchronization mode: One Way Replica",
        "\tHashing algorithm: Default (XXH128)",
        "\tMaximum allowed entry count: Default (2⁶⁴−1)",
        "\tMaximum staging file size: 100000000 (100 MB)",
        "\tSymbolic link mode: Default (Portable)",
        "\tIgnore syntax: Default (Mutagen)",
        "\tIgnores:",
        "\t\tnode_modules/",
        "\t\t*.pyc",
        "\tIgnore VCS mode: Ignore",
        "\tPermissions mode: Default (Portable)",
        "Alpha:",
        "\tURL: /home/me/app",
        "\tConfiguration:",
        "\t\tWatch mode: Force Poll",
        "\t\tWatch polling interval: 1 second",
        "\t\tProbe mode: Default (Probe)",
        "\t\tScan mode: Default (Accelerated)",
        "\t\tStage mode: Default (Data Directory)",
        "\t\tFile mode: 0644",
        "\t\tDirectory mode: Default (0700)",
        "\t\tDefault file/directory owner: Default",
        "\t\tDefault file/directory group: Default",
        "\tConnected: Yes",
        "\tSynchronizable contents:",
        "\t\t1 directory",
        "\t\t1 file (1.5 kB)",
        "\t\t1 symbolic link",
        "\tTransition problems:",
        "\t\t<root>: root trouble",
        "\t\tb: x",
        "Beta:",
        "\tURL: docker://app/var/www",
        "\t\tDOCKER_HOST=unix:///d.sock",
        "\tConfiguration:",
        "\t\tWatch mode: No Watch",
        "\t\tProbe mode: Default (Probe)",
        "\t\tScan mode: Default (Accelerated)",
        "\t\tStage mode: Default (Data Directory)",
        "\t\tFile mode: 0644",
        "\t\tDirectory mode: Default (0700)",
        "\t\tDefault file/directory owner: id:33",
        "\t\tDefault file/directory group: Default",
        "\t\tCompression: Default (LZ4)",
        "\tConnected: No",
        "Status: Watching for changes",
        D,
    ])


def test_long_defaults_all_say_default():
    lines = sync_output.session_lines(state(), "long")
    assert "\tSynchronization mode: Default (Two Way Safe)" in lines
    assert "\tIgnores: None" in lines
    assert "\tIgnore VCS mode: Default (Propagate)" in lines
    assert "\tMaximum staging file size: Default (18 EB)" in lines
    assert "\t\tWatch polling interval: Default (10 seconds)" in lines
    assert "\t\tFile mode: Default (0600)" in lines
    assert "Labels:" not in lines


@pytest.mark.parametrize("entry, expected", [
    (None, "<non-existent>"),
    (Entry.directory({"x": Entry.file(b"\x01")}), "Directory"),
    (Entry.file(DIGEST), "File (00ff10)"),
    (Entry.file(DIGEST, executable=True), "Executable File (00ff10)"),
    (Entry.symlink("../t"), "Symbolic Link (../t)"),
    (Entry.untracked(), "Untracked content"),
    (Entry.problematic("unable to open file: denied"), "Problematic content (unable to open file: denied)"),
])
def test_entry_formats(entry, expected):
    assert sync_output.format_entry(entry) == expected


def test_long_conflicts_golden_and_cap():
    conflicts = [Conflict(f"p{i:02d}", [Change(f"p{i:02d}", None, Entry.file(DIGEST))],
                          [Change(f"p{i:02d}", None, Entry.symlink("t"))]) for i in range(12)]
    conflicts.append(Conflict("", [Change("", Entry.directory(), None)], []))
    lines = sync_output.session_lines(state(conflicts=conflicts), "long")
    start = lines.index("Conflicts:")
    block = lines[start:lines.index("Status: Watching for changes")]
    assert block[:7] == [
        "Conflicts:",
        "\t(alpha) <root> (Directory -> <non-existent>)",
        "",
        "\t(alpha) p00 (<non-existent> -> File (00ff10))",
        "\t(beta)  p00 (<non-existent> -> Symbolic Link (t))",
        "",
        "\t(alpha) p01 (<non-existent> -> File (00ff10))",
    ]
    assert block[-2:] == ["", "\t...+3 more..."]
    assert sum(1 for line in block if line.startswith("\t(alpha)")) == 10
    assert "Conflicts: 13" in sync_output.session_lines(state(conflicts=conflicts))


def test_long_problems_are_capped_at_ten_sorted_by_path():
    problems = [Problem(f"f{i:02d}", "unreadable") for i in reversed(range(25))]
    lines = sync_output.session_lines(state(alpha=scanned(scan_problems=problems)), "long")
    start = lines.index("\tScan problems:")
    assert lines[start + 1] == "\t\tf00: unreadable"
    assert lines[start + 10] == "\t\tf09: unreadable"
    assert lines[start + 11] == "\t\t...+15 more..."
    assert "\tScan problems: 25" in sync_output.session_lines(state(alpha=scanned(scan_problems=problems)))


def test_staging_progress_lines():
    progress = StagingProgress(path="src/big.bin", received_size=500_000, expected_size=2_000_000,
                               received_files=3, expected_files=10, total_received_size=2_500_000,
                               total_expected_size=10_000_000, seconds_remaining=65)
    lines = sync_output.session_lines(state(status="staging-beta",
                                            beta=scanned(staging_progress=progress)))
    assert lines[-3:] == ["Status: Staging files on beta",
                          "Staging progress: 3/10 - 2.5 MB/10 MB - 25% - ETA 1m05s",
                          "Current file: src/big.bin (500 kB/2.0 MB)"]


@pytest.mark.parametrize("overrides, expected", [
    ({}, "Status: Watching for changes"),
    ({"paused": True, "last_error": "x"}, "Status: [Paused]"),
    ({"conflicts": [Conflict("a", [], [])]}, "Status: [C] Watching for changes"),
    ({"alpha": scanned(transition_problems=[Problem("a", "b")])}, "Status: [!] Watching for changes"),
    ({"last_error": "boom", "status": "connecting-beta"}, "Status: [X] Connecting to beta"),
    ({"conflicts": [Conflict("a", [], [])], "beta": scanned(scan_problems=[Problem("a", "b")]),
      "last_error": "e", "status": "halted-on-root-emptied"},
     "Status: [C] [!] [X] Halted due to one-sided root emptying"),
    ({"status": "staging-alpha", "alpha": scanned(staging_progress=StagingProgress(
        path="d/e/f.txt", received_size=10, expected_size=20, received_files=1, expected_files=4,
        total_received_size=110, total_expected_size=440))},
     "Status: Staging files on alpha [←] [1/4 - 110 B/440 B - 25%] f.txt (10 B/20 B)"),
    ({"status": "staging-beta", "beta": scanned(staging_progress=StagingProgress(
        received_files=1, expected_files=2, seconds_remaining=3.4))},
     "Status: Staging files on beta [→] [1/2 - 0 B - 50%] ETA 3s"),
    ({"status": "future-status"}, "Status: future-status"),
])
def test_monitor_line(overrides, expected):
    assert sync_output.monitor_line(state(**overrides)) == expected


def test_monitor_header():
    assert sync_output.monitor_header_lines(state(name="web")) == [
        "Name: web", f"Identifier: {ID}", "Alpha:", "\tURL: /home/me/app", "Beta:",
        "\tURL: me@box:2222:~/app"]
    long = sync_output.monitor_header_lines(state(), long=True)
    assert "Configuration:" in long and "\tConnected: Yes" not in long


@pytest.mark.parametrize("size, expected", [
    (0, "0 B"), (9, "9 B"), (10, "10 B"), (999, "999 B"), (1000, "1.0 kB"), (1500, "1.5 kB"),
    (9_940, "9.9 kB"), (9_950, "10 kB"), (10_000, "10 kB"), (2_345_678, "2.3 MB"), (100_000_000, "100 MB"),
    (2**64 - 1, "18 EB"),
])
def test_humanize_bytes(size, expected):
    assert sync_output.humanize_bytes(size) == expected


def test_json_field_names_and_values():
    conflicts = [Conflict("c", [Change("c", None, Entry.file(DIGEST, executable=True))],
                          [Change("c", None, Entry.symlink("t"))])]
    problems = [Problem(f"f{i:02d}", "bad") for i in range(15)]
    one = state(name="web", labels={"k": "v"}, successful_cycles=4, conflicts=conflicts,
                configuration=SyncConfiguration(mode="two-way-resolved", ignores=["*.o"],
                                                ignore_vcs=False, permissions_mode="manual",
                                                endpoint=EndpointConfiguration(default_file_mode=0o755),
                                                alpha=EndpointConfiguration(watch_mode="no-watch")),
                alpha=scanned(scan_problems=problems, staging_progress=StagingProgress(
                    path="x", expected_files=2)))
    data = json.loads(json.dumps(sync_output.list_json([one])))
    assert len(data) == 1
    session = data[0]
    assert session["identifier"] == ID
    assert session["creationTime"] == "2023-11-14T22:13:20.25Z"
    assert (session["name"], session["labels"], session["paused"], session["status"],
            session["successfulCycles"], session["lastError"]) == ("web", {"k": "v"}, False,
                                                                  "watching", 4, "")
    assert session["mode"] == "two-way-resolved" and "hash" not in session
    assert session["ignore"] == {"paths": ["*.o"], "vcs": False}
    assert session["permissions"] == {"mode": "manual", "defaultFileMode": 0o755}
    assert session["conflicts"] == [{
        "root": "c",
        "alphaChanges": [{"path": "c", "old": None,
                          "new": {"kind": "file", "digest": "00ff10", "executable": True}}],
        "betaChanges": [{"path": "c", "old": None, "new": {"kind": "symlink", "target": "t"}}],
    }]
    alpha, beta = session["alpha"], session["beta"]
    for endpoint in (alpha, beta):
        assert {"url", "protocol", "path", "connected", "scanned", "directories", "files",
                "symbolicLinks", "totalFileSize", "scanProblems", "transitionProblems",
                "stagingProgress"} <= set(endpoint)
    assert alpha["url"] == "/a" and alpha["watch"] == {"mode": "no-watch"}
    assert len(alpha["scanProblems"]) == 15  # no cap in JSON
    assert alpha["scanProblems"][0] == {"path": "f00", "error": "bad"}
    assert alpha["stagingProgress"] == {"path": "x", "receivedSize": 0, "expectedSize": 0,
                                        "receivedFiles": 0, "expectedFiles": 2,
                                        "totalReceivedSize": 0, "totalExpectedSize": 0}
    assert (beta["url"], beta["protocol"], beta["user"], beta["host"], beta["port"], beta["path"]) == \
        ("me@box:2222:~/app", "ssh", "me", "box", 2222, "~/app")
    assert beta["stagingProgress"] is None and "watch" not in beta


def test_json_problematic_and_untracked_entries():
    conflicts = [Conflict("p", [Change("p", Entry.untracked(), Entry.problematic("nope"))],
                          [Change("p", Entry.directory({"a": Entry.directory()}), None)])]
    session = sync_output.session_json(state(conflicts=conflicts))
    assert session["conflicts"][0]["alphaChanges"][0] == {
        "path": "p", "old": {"kind": "untracked"}, "new": {"kind": "problematic", "problem": "nope"}}
    assert session["conflicts"][0]["betaChanges"][0]["old"] == {"kind": "directory"}


@pytest.mark.parametrize("timestamp, expected", [
    (0, "1970-01-01T00:00:00Z"),
    (1_700_000_000.5, "2023-11-14T22:13:20.5Z"),
    (1_700_000_000.123456, "2023-11-14T22:13:20.123456Z"),
])
def test_rfc3339(timestamp, expected):
    assert sync_output.rfc3339(timestamp) == expected


@pytest.mark.parametrize("progress, percent", [
    (StagingProgress(total_received_size=995, total_expected_size=1000), "99%"),  # not 100% yet
    (StagingProgress(total_received_size=1000, total_expected_size=1000), "100%"),
    (StagingProgress(received_files=1, expected_files=3), "33%"),  # only empty files: by files
    (StagingProgress(), "0%"),
    (StagingProgress(total_received_size=20, total_expected_size=10), "100%"),  # never above
])
def test_staging_percent_is_rounded_down_and_bounded(progress, percent):
    assert sync_output.staging_percent(progress) == percent


def test_json_last_staging_progress_only_when_a_pass_completed():
    final = StagingProgress(path="b", received_size=5, expected_size=5, received_files=2,
                            expected_files=2, total_received_size=9, total_expected_size=9,
                            seconds_remaining=0.0)
    session = sync_output.session_json(state(beta=scanned(last_staging=final)))
    assert session["beta"]["lastStagingProgress"] == {
        "path": "b", "receivedSize": 5, "expectedSize": 5, "receivedFiles": 2,
        "expectedFiles": 2, "totalReceivedSize": 9, "totalExpectedSize": 9,
        "secondsRemaining": 0.0}
    assert session["beta"]["stagingProgress"] is None
    assert "lastStagingProgress" not in session["alpha"]
