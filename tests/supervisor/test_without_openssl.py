"""The fork server's first preload (``actors.runtime.without_openssl``) and the agent's start-up
import asyncio and secrets without loading OpenSSL, and leave hashlib and ssl importable with
their usual, OpenSSL-backed behaviour (issue 6, memory). Each case runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mutagen_actors.agent.install import BOOT

CHECK = """
import asyncio, sys
maps = open('/proc/self/maps').read()
assert 'libcrypto' not in maps and 'libssl' not in maps, 'OpenSSL loaded'
assert 'ssl' not in sys.modules and '_hashlib' not in sys.modules and 'hashlib' not in sys.modules
assert asyncio.run(asyncio.sleep(0, 'ran')) == 'ran'
import secrets
assert len(secrets.token_hex(8)) == 16 and secrets.compare_digest('a', 'a')
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.settings import HashAlgorithm
assert digest_bytes(b'abc', HashAlgorithm.XXH128)
assert 'libcrypto' not in open('/proc/self/maps').read(), 'xxh128 loaded OpenSSL'
assert digest_bytes(b'abc', HashAlgorithm.SHA1).hex() == 'a9993e364706816aba3e25717850c26c9cd0d89d'
import hashlib
assert hashlib.sha1.__name__ == 'openssl_sha1', hashlib.sha1
import ssl
assert ssl.OPENSSL_VERSION
print('ok')
"""

# The agent's boot prelude: BOOT's lines from the hiding up to the agent's own import.
_lines = BOOT.splitlines()
AGENT_PRELUDE = "\n".join(_lines[_lines.index("sys.modules['ssl']=sys.modules['_hashlib']=None"):
                                 _lines.index("from mutagen_actors.agent.remote_main import main")])


@pytest.mark.parametrize("prelude", [
    "import sys\nimport mutagen_actors.actors.runtime.without_openssl",
    "import sys\n" + AGENT_PRELUDE,
], ids=["fork server", "agent boot"])
def test_asyncio_and_secrets_without_openssl_then_hashlib_as_usual(prelude):
    done = subprocess.run([sys.executable, "-c", prelude + "\n" + CHECK], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_after_asyncio_it_changes_nothing():
    code = ("import asyncio, sys\nimport mutagen_actors.actors.runtime.without_openssl\n"
            "print('ssl' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
