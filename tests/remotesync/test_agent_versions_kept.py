"""An agent install on a remote keeps the other versions still in use (another daemon of
another version reaching the same account: a second machine, or an upgrade on one of them) and
deletes those unused for ``KEEP_UNUSED``; every start marks its version used. The remote
scripts run here as real ``python3`` processes with a temporary ``HOME``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time

import pytest

from mutagen_actors.agent.install import BOOT, KEEP_UNUSED, NOT_INSTALLED, UNPACK


def remote(home: str, script: str, *args: str, input: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-I", "-c", script, *args], input=input,
                          capture_output=True, timeout=60, env={"HOME": home, "PATH": "/usr/bin"})


def bundle(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def installed(home: str, identity: str, tag: str, used_seconds_ago: float) -> str:
    directory = os.path.join(home, ".mutagen-actors", "agents", identity)
    os.makedirs(directory)
    marker = os.path.join(directory, ".installed")
    with open(marker, "w") as handle:
        handle.write(tag)
    when = time.time() - used_seconds_ago
    os.utime(marker, (when, when))
    return directory


@pytest.mark.parametrize("used_seconds_ago, kept", [
    (0, True), (3600, True), (KEEP_UNUSED - 600, True), (KEEP_UNUSED + 600, False),
])
def test_install_keeps_other_versions_in_use(tmp_path, used_seconds_ago, kept):
    home = str(tmp_path)
    tag = sys.implementation.cache_tag
    other = installed(home, "0.1.0-other", tag, used_seconds_ago)
    result = remote(home, UNPACK, "0.1.0-new", tag, input=bundle({"hello.txt": "new agent"}))
    assert result.returncode == 0, result.stderr
    new = os.path.join(home, ".mutagen-actors", "agents", "0.1.0-new")
    assert result.stdout.decode().strip() == new
    with open(os.path.join(new, "hello.txt")) as handle:
        assert handle.read() == "new agent"
    assert os.path.isdir(other) is kept


def test_each_start_marks_its_version_used(tmp_path):
    home = str(tmp_path)
    directory = installed(home, "0.1.0-this", sys.implementation.cache_tag, KEEP_UNUSED * 2)
    package = os.path.join(directory, "mutagen_actors", "agent")
    os.makedirs(package)
    for folder in (os.path.dirname(package), package):
        open(os.path.join(folder, "__init__.py"), "w").close()
    with open(os.path.join(package, "remote_main.py"), "w") as handle:
        handle.write("def main(argv):\n    print('started', *argv)\n    return 0\n")
    result = remote(home, BOOT, "0.1.0-this", "serve")
    assert result.returncode == 0 and result.stdout.decode().strip() == "started serve"
    assert time.time() - os.stat(os.path.join(directory, ".installed")).st_mtime < 600
    missing = remote(home, BOOT, "0.1.0-absent", "serve")
    assert missing.returncode == NOT_INSTALLED
