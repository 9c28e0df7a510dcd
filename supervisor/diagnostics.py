"""What a stuck daemon is doing, on request: ``kill -USR1 <daemon pid>``.

``install(loop, stacks_path)`` makes SIGUSR1
- write every thread's Python stack to ``stacks_path`` at once, from the signal handler itself
  (``faulthandler``: works even when the event loop is blocked in a synchronous call), and
- log every asyncio task with the stack it is suspended in (event ``task stack``, one line per
  task, in the daemon log) as soon as the event loop runs the handler.

Nothing else changes: the daemon keeps running. Used by the test harness when a CLI call gets no
answer in time, and by anyone debugging a command that hangs.
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import signal

import structlog

log = structlog.get_logger("daemon")


def install(loop: asyncio.AbstractEventLoop, stacks_path: str) -> None:
    stream = open(stacks_path, "a", buffering=1)  # noqa: SIM115 - kept open for the handler
    loop.add_signal_handler(signal.SIGUSR1, log_task_stacks)
    # chain=True: after writing the thread stacks, faulthandler calls the handler installed
    # above (asyncio's wake-up), so one signal gives both views.
    faulthandler.register(signal.SIGUSR1, file=stream, all_threads=True, chain=True)


def task_stacks() -> list[tuple[str, str]]:
    """(task name, its stack as text) of every unfinished task of the running loop: the whole
    chain of coroutines it is suspended in (``Task.print_stack`` shows only the outermost),
    down to what it waits for."""
    found = []
    for task in asyncio.all_tasks():
        text = io.StringIO()
        state = "cancelling" if getattr(task, "cancelling", lambda: 0)() else "pending"
        text.write(f"{task!r} ({state})\n")
        awaited = task.get_coro()
        for _ in range(64):  # bounded: a chain is never this deep
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                text.write(f"  waiting for {awaited!r}\n")
                break
            code = frame.f_code
            text.write(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}\n")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
            if awaited is None:
                break
        found.append((task.get_name(), text.getvalue()))
    return found


def log_task_stacks() -> None:
    stacks = task_stacks()
    for name, stack in stacks:
        log.warning("task stack", task=name, stack=stack)
    log.warning("task stacks logged", tasks=len(stacks))
