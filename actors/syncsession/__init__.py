"""One synchronization session's actors: the reconciler (drives the cycle, owns the ancestor and
the session state), the stager (moves content between endpoints) and the transitioner (applies on
both sides), with their pure helpers. See docs/architecture.md, "Sync sessions"."""
