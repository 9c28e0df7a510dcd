"""The message schema, one module per domain.

Every message is a ``Message`` subclass (``base.py``). A domain module lists its messages in a
``MESSAGES`` tuple; ``wire.schema`` gathers all of them into the one tagged union that the codec
decodes and validates in a single step. Adding a message: define it in the domain module, add it
to that module's ``MESSAGES``. Changing the meaning or fields of an existing message bumps
``wire.version.PROTOCOL_VERSION``.
"""
