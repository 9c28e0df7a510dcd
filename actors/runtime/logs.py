"""Structured logging set-up shared by the daemon and its actors.

All processes append JSON lines to one file (``<data dir>/daemon/daemon.log``). Each line carries
``timestamp`` (UTC ISO), ``level``, ``event``, ``pid`` and, where they apply, ``session``,
``actor`` and ``side``. Lines are written with one ``write`` on a file opened with ``O_APPEND``,
so lines from different processes do not interleave.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
          "warning": logging.WARNING, "error": logging.ERROR}


def level_from_environment() -> str:
    value = os.environ.get("MUTAGEN_ACTORS_LOG_LEVEL", "info").lower()
    return value if value in LEVELS else "info"


def configure(path: str, level: str = "info", **context) -> None:
    """Send structlog output to ``path`` (or stderr when ``path`` is empty), binding ``context``
    (e.g. ``session=..., actor=...``) to every line of this process."""
    if path:
        stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - process-long
    else:
        stream = sys.stderr
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(pid=os.getpid(), **context)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
