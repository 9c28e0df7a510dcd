"""The part of the schema a control-socket client (the CLI) decodes: the messages of
``base``, ``control``, ``sync`` and ``forward``, the domains of the daemon's control requests,
replies and questions. Importing it costs a fraction of ``wire.schema`` (no endpoint, actor or
agent messages, hence none of the sync engine's chunking and hashing modules).

The tags, fields and protocol version are those of ``wire.schema`` (the same classes); a frame is
valid for ``ControlEnvelope`` exactly when it is valid for ``wire.schema.Envelope`` and its
message is of these domains. A client that meets a message of another domain decodes it with
``wire.codec`` (see ``wire.stream_client``), so nothing breaks if a reply type moves.
"""

from typing import Union

import msgspec

from .messages import base, control, forward, sync

CONTROL_MESSAGES: tuple = base.MESSAGES + control.MESSAGES + sync.MESSAGES + forward.MESSAGES

AnyControlMessage = Union[CONTROL_MESSAGES]  # type: ignore[valid-type]


class ControlEnvelope(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    version: int
    id: int
    reply_to: int
    body: AnyControlMessage  # type: ignore[valid-type]
