"""The real CLI under a pseudo-terminal, as a user runs it: what it shows, what is typed."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

HOST_KEY_QUESTION = "Are you sure you want to continue connecting (yes/no)? "


class Terminal:
    """The CLI running with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, daemon, *args: str):
        master, slave = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mutagen_actors.cli", *args], env=daemon.env,
            stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True)
        os.close(slave)
        self.master = master
        self.output = b""
        self.mark = 0  # what ``expect`` has consumed

    def _read(self, timeout: float) -> bool:
        """Read what is there (waiting up to ``timeout``); False at end of output."""
        readable, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not readable:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the process closed its end
            return False
        self.output += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 60.0) -> str:
        """Wait until ``text`` appears after the last expectation; returns what came before."""
        deadline = time.monotonic() + timeout
        wanted = text.encode()
        while True:
            found = self.output.find(wanted, self.mark)
            if found >= 0:
                before = self.output[self.mark:found].decode(errors="replace")
                self.mark = found + len(wanted)
                return before
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} not shown within {timeout:g} s: {self.text()!r}"
            if not self._read(min(remaining, 1.0)) and self.process.poll() is not None:
                raise AssertionError(f"{text!r} never shown; the command ended: {self.text()!r}")

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 120.0) -> tuple[int, str]:
        """Wait for the command to end; (exit status, everything it showed)."""
        deadline = time.monotonic() + timeout
        while self._read(min(max(deadline - time.monotonic(), 0), 1.0)):
            if time.monotonic() > deadline:
                self.process.kill()
                raise AssertionError(f"the command did not end within {timeout:g} s: "
                                     f"{self.text()!r}")
        status = self.process.wait(timeout=max(deadline - time.monotonic(), 1))
        os.close(self.master)
        return status, self.text()

    def text(self) -> str:
        return self.output.decode(errors="replace")


def error_lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "\n").splitlines()
            if line.strip().startswith("Error")]
