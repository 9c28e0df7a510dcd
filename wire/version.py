"""Software and protocol versions.

``VERSION`` is the release of this package (kept equal to pyproject's version; a test checks it).
``PROTOCOL_VERSION`` is the version of the message schema in ``wire/messages``; every frame
carries it, and a peer speaking another version is refused with a clear error.
"""

VERSION = "0.1.0"
PROTOCOL_VERSION = 1

# Largest frame accepted from any peer (daemon socket, actor mailbox, agent stream).
MAX_FRAME_SIZE = 64 * 1024 * 1024
