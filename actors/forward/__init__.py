"""Forwarding: a source listener joined to a destination dialer by a byte relay.

- ``endpoints``: parse and validate ``tcp:``/``tcp4:``/``tcp6:``/``unix:`` endpoints and unix
  socket options (pure; ``ForwardingError`` carries the one-line message a CLI shows);
- ``streams``: the stream-opener abstraction (``(reader, writer)`` pairs, listeners, dialers)
  and its kernel-socket implementation;
- ``listeners`` / ``dialers``: local listeners and dialers (asyncio);
- ``relay``: per-connection byte copying with half-close and statistics;
- ``remote``: endpoints on SSH hosts (SSH channels: ``ssh -L`` / ``ssh -R``) and in Docker
  containers (the agent dials and listens there), for the forwarder;
- ``mux``: connections multiplexed over one agent tunnel (``wire.forward_mux`` frames);
- ``actor``: the forwarder actor that runs one forwarding session's listener and relay.
"""
