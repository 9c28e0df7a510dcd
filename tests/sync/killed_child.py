"""A child process killed with SIGKILL at a point it announces, for crash-resume tests."""

from __future__ import annotations

import select
import signal
import subprocess


def kill_9_once_it_says(command: list[str], line: bytes, timeout: float = 60) -> None:
    """Run ``command`` (stdin and stdout piped; it should block on stdin once there), wait up to
    ``timeout`` seconds for its first output line to be ``line`` (newline included), then kill it
    with SIGKILL and reap it. Fails the test if the line does not come in time or the child ends
    any other way; the child is never left running and its pipes are always closed."""
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ready, _, _ = select.select([child.stdout], [], [], timeout)
        assert ready and child.stdout.readline() == line
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        child.stdin.close()
        child.stdout.close()
