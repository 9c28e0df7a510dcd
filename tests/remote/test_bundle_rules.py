"""Pure rules of the agent bundle and install: wheel tags, pip platforms, probe results,
cipher order, docker arguments."""

from __future__ import annotations

import json

import pytest

from mutagen_actors.agent.bundle import BundleError, RemotePlatform, pip_platforms, tag_supported
from mutagen_actors.agent.install import AgentError, parse_probe
from mutagen_actors.agent.transports import Completed
from mutagen_actors.agent.transports.docker import docker_environment, exec_arguments, explain_exec_failure
from mutagen_actors.agent.transports.ssh import preferred_ciphers

DEBIAN12 = RemotePlatform("Linux", "x86_64", (3, 11, 2), "cpython", "cpython-311", "glibc", "2.36")
OLD_GLIBC = RemotePlatform("Linux", "x86_64", (3, 11, 2), "cpython", "cpython-311", "glibc", "2.17")
PY312 = RemotePlatform("Linux", "x86_64", (3, 12, 1), "cpython", "cpython-312", "glibc", "2.36")
ARM = RemotePlatform("Linux", "aarch64", (3, 11, 2), "cpython", "cpython-311", "glibc", "2.36")
ALPINE = RemotePlatform("Linux", "x86_64", (3, 11, 2), "cpython", "cpython-311", "musl", "")
MAC = RemotePlatform("Darwin", "arm64", (3, 11, 2), "cpython", "cpython-311", "", "")


@pytest.mark.parametrize("tag, remote, supported", [
    ("py3-none-any", DEBIAN12, True),
    ("py3-none-any", MAC, True),
    ("cp311-cp311-manylinux_2_17_x86_64", DEBIAN12, True),
    ("cp311-cp311-manylinux_2_28_x86_64", DEBIAN12, True),
    ("cp311-cp311-manylinux_2_28_x86_64", OLD_GLIBC, False),  # remote glibc too old
    ("cp311-cp311-manylinux2014_x86_64", OLD_GLIBC, True),
    ("cp311-cp311-manylinux_2_17_x86_64", PY312, False),  # other Python minor version
    ("cp310-abi3-manylinux_2_17_x86_64", PY312, True),  # stable ABI from 3.10 on
    ("cp313-abi3-manylinux_2_17_x86_64", PY312, False),
    ("cp311-cp311-manylinux_2_17_x86_64", ARM, False),  # other machine
    ("cp311-cp311-musllinux_1_2_x86_64", ALPINE, True),
    ("cp311-cp311-manylinux_2_17_x86_64", ALPINE, False),
    ("py3-none-manylinux_2_17_x86_64", DEBIAN12, True),
    ("cp311-cp311-linux_x86_64", DEBIAN12, False),  # built locally: unknown requirements
    ("cp311-cp311-macosx_11_0_arm64", MAC, False),
    ("garbage", DEBIAN12, False),
])
def test_tag_supported(tag, remote, supported):
    assert tag_supported(tag, remote) is supported


def test_pip_platforms_newest_first_down_to_manylinux1():
    platforms = pip_platforms(DEBIAN12)
    assert platforms[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in platforms and platforms[-1] == "manylinux1_x86_64"


@pytest.mark.parametrize("remote", [ALPINE, MAC])
def test_pip_platforms_refuses_what_it_cannot_fetch(remote):
    with pytest.raises(BundleError, match="only glibc Linux remotes"):
        pip_platforms(remote)


def _probe_output(**override) -> bytes:
    found = {"system": "Linux", "machine": "x86_64", "python": [3, 11, 2],
             "implementation": "cpython", "cache_tag": "cpython-311", "libc": "glibc",
             "libc_version": "2.36", "home": "/home/u"}
    found.update(override)
    return json.dumps(found).encode() + b"\n"


def test_parse_probe_reads_the_platform():
    platform = parse_probe("u@h", Completed(0, b"motd line\n" + _probe_output(), b""))
    assert platform == RemotePlatform("Linux", "x86_64", (3, 11, 2), "cpython", "cpython-311",
                                      "glibc", "2.36", "/home/u")


@pytest.mark.parametrize("completed, message", [
    (Completed(127, b"", b"sh: 1: python3: not found\n"),
     "u@h has no python3: the agent needs python3 >= 3.10 on the PATH there"),
    (Completed(127, b"", b'OCI runtime exec failed: exec: "python3": executable file not found in $PATH'),
     "has no python3"),
    (Completed(0, _probe_output(python=[3, 8, 10]), b""),
     "u@h has python3 3.8.10; the agent needs python3 >= 3.10"),
    (Completed(0, _probe_output(implementation="pypy"), b""), "the agent needs CPython"),
    (Completed(0, b"not json\n", b""), "printed something unexpected: 'not json\\n'"),
    (Completed(1, b"", b"Traceback...\nOSError: boom\n"), "failed with status 1 (it said: OSError: boom)"),
])
def test_parse_probe_errors_say_what_is_needed(completed, message):
    with pytest.raises(AgentError) as caught:
        parse_probe("u@h", completed)
    assert message in str(caught.value)


def test_ciphers_prefer_aes_gcm_and_keep_the_rest():
    available = [b"chacha20-poly1305@openssh.com", b"aes256-gcm@openssh.com",
                 b"aes128-gcm@openssh.com", b"aes128-ctr"]
    assert preferred_ciphers(available) == ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                                            "chacha20-poly1305@openssh.com", "aes128-ctr"]


def test_docker_environment_replaces_the_daemons_docker_variables():
    base = {"PATH": "/bin", "DOCKER_HOST": "unix:///daemon.sock", "DOCKER_CONTEXT": "x"}
    assert docker_environment({"DOCKER_HOST": "tcp://10.0.0.1:2376"}, base) == {
        "PATH": "/bin", "DOCKER_HOST": "tcp://10.0.0.1:2376"}


@pytest.mark.parametrize("user, expected", [
    ("", ["exec", "-i", "c", "python3", "-V"]),
    ("www", ["exec", "-i", "--user", "www", "c", "python3", "-V"]),
])
def test_exec_arguments(user, expected):
    assert exec_arguments("c", user, ["python3", "-V"]) == expected


@pytest.mark.parametrize("completed, expected", [
    (Completed(1, b"", b"Error response from daemon: No such container: web\n"),
     "unable to run a command in docker://web: Error response from daemon: No such container: web"),
    (Completed(1, b"", b"some command error\n"), None),
    (Completed(0, b"", b""), None),
])
def test_explain_exec_failure(completed, expected):
    assert explain_exec_failure("docker://web", completed) == expected


@pytest.mark.parametrize("filename, remote, supported", [
    ("msgspec-0.22.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", PY312, True),
    ("msgspec-0.22.0-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", PY312, False),
    ("pyzmq-27.3.0-cp312-abi3-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl", PY312, True),
    ("structlog-26.1.0-py3-none-any.whl", OLD_GLIBC, True),
    ("name-1.0-1build-cp311-cp311-manylinux_2_17_x86_64.whl", DEBIAN12, True),
    ("not-a-wheel.tar.gz", DEBIAN12, False),
])
def test_wheel_supported(filename, remote, supported):
    from mutagen_actors.agent.bundle import wheel_supported
    assert wheel_supported(filename, remote) is supported


_SOURCES = [("mutagen_actors/wire/a.py", b"A = 1\n"), ("mutagen_actors/agent/b.py", b"B = 2\n")]
_VERSIONS = [("msgspec", "0.22.0")]


@pytest.mark.parametrize("sources, versions, same", [
    (_SOURCES, _VERSIONS, True),
    ([_SOURCES[0], ("mutagen_actors/agent/b.py", b"B = 3\n")], _VERSIONS, False),  # edited
    (_SOURCES[:1], _VERSIONS, False),  # a file removed
    (_SOURCES, [("msgspec", "0.23.0")], False),  # a dependency upgraded
])
def test_a_bundle_is_only_made_of_the_code_this_process_runs(sources, versions, same):
    from mutagen_actors.agent.bundle import BundleError, check_snapshot, identity_of

    expected = identity_of(_SOURCES, _VERSIONS)
    if same:
        check_snapshot(sources, versions, expected)
    else:
        with pytest.raises(BundleError, match="changed since this process started.*restart the daemon"):
            check_snapshot(sources, versions, expected)
