"""``--compression`` of a session with an SSH endpoint, through the real CLI, daemon, sshd and
agent: lz4 (the default) compresses the tunnel's content frames, ``none`` sends them as they
are, and ``sync list --long`` says which. The bytes each frame took on the tunnel's stream are
read from the traffic log the benchmarks use (``MUTAGEN_ACTORS_TRAFFIC_LOG``)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import pytest

from mutagen_actors.wire.tunnel import TRAFFIC_LOG_ENV

from .conftest import HomeDaemon, stop_home_daemon, wait_same, write

TEXT = b"".join(b"line %06d of a source file that compresses well\n" % i for i in range(40_000))


@pytest.mark.parametrize("flags, shown, compressed", [
    ((), "Default (LZ4)", True),
    (("--compression", "lz4"), "LZ4", True),
    (("--compression", "none"), "None", False),
    (("--compression", "lz4", "--compression-beta", "none"), "None", False),  # beta's own wins
])
def test_compression_of_the_tunnel(sshd, flags, shown, compressed):
    base = tempfile.mkdtemp(prefix="mr-z-", dir="/tmp")
    home = os.path.join(base, "home")
    os.makedirs(home)
    os.symlink(sshd.client.directory, os.path.join(home, ".ssh"))
    traffic = os.path.join(base, "traffic.jsonl")
    daemon = HomeDaemon(os.path.join(base, "data"), home=home, extra={TRAFFIC_LOG_ENV: traffic})
    daemon.start()
    local = os.path.join(base, "local")
    name = f"z{os.getpid()}-{len(flags)}-{shown.split()[0].lower()}"
    remote = os.path.join(sshd.home, name)
    shutil.rmtree(remote, ignore_errors=True)
    write(local, "src/big.txt", TEXT)
    try:
        created = daemon.cli("sync", "create", "-n", "z", *flags, local, f"testhost:{name}",
                             timeout=150)
        assert created.returncode == 0, created.stderr
        assert wait_same(local, remote)["src/big.txt"] == ("file", TEXT, False)
        listed = daemon.cli("sync", "list", "--long", "z", check=True).stdout
        beta = listed[listed.index("Beta:"):]
        assert f"Compression: {shown}" in beta, listed
        with open(traffic) as stream:
            frames = [json.loads(line) for line in stream]
        content = [(payload, on_stream) for _, direction, kind, payload, on_stream in frames
                   if direction == "sent" and kind == "StageChunks"]
        payload = sum(p for p, _ in content)
        on_stream = sum(s for _, s in content)
        assert payload >= len(TEXT), frames[-5:]
        if compressed:
            assert on_stream < payload / 4, (payload, on_stream)
        else:
            assert on_stream >= payload, (payload, on_stream)
    finally:
        daemon.cli("sync", "terminate", "--all", timeout=60)
        stop_home_daemon(daemon, base)
        shutil.rmtree(remote, ignore_errors=True)
