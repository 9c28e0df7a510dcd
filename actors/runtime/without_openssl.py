"""Imported first by the daemon's fork server (``supervisor.actor_process.PRELOAD_MODULES``):
the common standard modules without OpenSSL.

Importing ``ssl`` (asyncio does, at import) or ``hashlib``/``hmac`` (through ``secrets``, which
the sync core uses for random names) loads OpenSSL's libcrypto and initialises it: ~3.5-5 MB
resident in the fork server, and what the initialisation allocated is inherited by, and counted
in the RSS of, every actor it forks (measured: fork server -4.5 MB, each forked actor -1.2 MB).
No actor needs it for that: TLS is never used (SSH is asyncssh on cryptography's own OpenSSL,
ZeroMQ is plain ipc/tcp), ``secrets`` only needs ``os.urandom`` and ``compare_digest``, and
xxh128 digests do not use hashlib (``actors.sync.hashing`` imports it on first sha1/sha256 use).

So these modules are imported here with ``ssl`` and ``_hashlib`` hidden (each then falls back as
it is written to: asyncio without TLS transports, hmac and that first hashlib on CPython's
builtin hash code), and the hiding is undone at once: ``ssl`` is importable again, and the
first ``import hashlib`` after this gets a fresh module with OpenSSL's fast constructors (what
sha1/sha256 sessions and asyncssh use). What stays without OpenSSL: asyncio's TLS (unused) and
``hmac.new`` (unused; pure Python then).

Importing this module after asyncio or hashlib was already imported changes nothing. The
agent's start-up (``agent.install.BOOT``) hides ``ssl`` from asyncio the same way on the remote.
"""

from __future__ import annotations

import sys

HIDDEN = ("ssl", "_hashlib")
PRELOADED = ("asyncio", "hashlib", "hmac", "secrets")

if not any(name in sys.modules for name in HIDDEN + PRELOADED):
    for name in HIDDEN:
        sys.modules[name] = None  # type: ignore[assignment] - importing it raises ImportError
    try:
        import asyncio  # noqa: F401
        import secrets  # noqa: F401 - imports hmac and hashlib
    finally:
        for name in HIDDEN:
            del sys.modules[name]
        # the next "import hashlib" builds the module again, with OpenSSL's constructors
        sys.modules.pop("hashlib", None)
