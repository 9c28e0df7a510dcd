"""The actor runtime: an actor is a separate OS process with a ZeroMQ mailbox.

- ``actor.Actor``: the base class (``on_start`` / ``handle`` / ``on_stop`` hooks).
- ``launch.ActorLaunch``: everything a new actor process needs to know (picklable).
- ``process.run``: the entry point executed in the new process (forked by the fork server).
- ``logs.configure``: structlog set-up shared by the daemon and the actors.
- ``debug``: diagnostic actors used by ``daemon debug-session`` and the tests.
"""
