"""``python -m mutagen_actors.cli`` (how ``daemon start`` launches the background daemon)."""

# First: asyncio and secrets without loading OpenSSL (the daemon runs as this module; see
# actors/runtime/without_openssl.py).
from mutagen_actors.actors.runtime import without_openssl  # noqa: F401, I001

from .main import main

main()
