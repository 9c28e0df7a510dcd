"""msgpack codec for protocol frames, validating on decode.

Only this module (and the socket helpers beside it) turn messages into bytes and back. The
implementation is ``wire.framing.FrameCodec``, here over the whole schema (``wire.schema``):

- ``encode(body, *, id=0, reply_to=0) -> bytes``: one message into a frame;
- ``decode(frame, *, max_size=MAX_FRAME_SIZE) -> Envelope``: decode and validate one frame;
  raise ``ProtocolError`` naming what was wrong.
"""

from __future__ import annotations

from .framing import FrameCodec
from .schema import Envelope

_codec = FrameCodec(Envelope)
encode = _codec.encode
decode = _codec.decode
