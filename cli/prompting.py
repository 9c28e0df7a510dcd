"""Answering the daemon's questions on the terminal of a waiting ``create``/``resume``.

When stdin and stderr are both a terminal (``can_prompt``), the command sends
``EnablePrompting`` before its request; the daemon may then ask ``PromptQuestion``s (an unknown
SSH host key, a password) while the command waits. ``answer_on_terminal`` shows the question on
stderr and reads one line from stdin: without echo for passwords (like ``getpass``), with echo
for the host-key question (OpenSSH's "Are you sure you want to continue connecting (yes/no)?").

Failure rules: every read has the question's deadline; past it the answer is None with reason
``timed out`` (a line says so on stderr). End of input gives None (``no answer``). Ctrl-C is
not caught (the command ends; the daemon sees the connection close and gives up). The terminal's
echo setting is always restored.
"""

from __future__ import annotations

import os
import select
import sys
import time

from mutagen_actors.wire.messages.control import PromptAnswer, PromptQuestion


def can_prompt(stdin=None, stderr=None) -> bool:
    """True when the user can see and answer questions (stdin and stderr are terminals)."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    try:
        return stdin.isatty() and stderr.isatty()
    except (AttributeError, ValueError):
        return False


def answer_on_terminal(question: PromptQuestion, stdin=None, stderr=None) -> PromptAnswer:
    """Show ``question`` on ``stderr`` and read the answer from ``stdin`` (see the module)."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    fd = stdin.fileno()
    line = _read_line(fd, question.echo, time.monotonic() + question.timeout,
                      lambda: (stderr.write(question.message), stderr.flush()))
    if not question.echo:
        stderr.write("\n")  # the user's Enter was not echoed
        stderr.flush()
    if line is None:
        stderr.write(f"\nno answer within {question.timeout:g} s\n")
        stderr.flush()
        return PromptAnswer(None, "timed out")
    if line == "":
        return PromptAnswer(None, "no answer")
    return PromptAnswer(line.rstrip("\r\n"))


def _read_line(fd: int, echo: bool, deadline: float, show) -> str | None:
    """One line from terminal ``fd`` (echo off if asked; ``show()`` writes the question once
    the terminal is set, so nothing typed after it is echoed or lost); "" at end of input,
    None past ``deadline``."""
    import termios

    saved = None
    if not echo:
        try:
            saved = termios.tcgetattr(fd)
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~termios.ECHO
            termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
        except termios.error:
            saved = None
    try:
        show()
        data = b""
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return data.decode(errors="replace") if data else ""
            data += chunk
        return data.decode(errors="replace")
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
