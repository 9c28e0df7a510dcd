"""The entry point of an actor process: ``run(launch, ready)``.

Executed in a process forked by the daemon's fork server (this module is preloaded there, so its
imports - asyncio, zmq, msgspec, structlog, the wire schema - are already in memory and shared
copy-on-write). Sequence:

1. ignore SIGINT (the daemon decides when actors stop), log to the shared file;
2. watch the supervisor with a pidfd: if the daemon dies the actor stops by itself (no orphans);
3. bind the mailbox, import and construct the actor class, run ``on_start``;
4. report ``("ready", pid)`` on the ``ready`` pipe, or ``("failed", reason)`` and exit 1;
5. serve: a receive task answers heartbeats and queues requests; one worker starts them in
   arrival order and handles them one at a time, except that requests of the actor's
   ``CONCURRENT`` types may overlap each other (``admission``; ``queue_depth`` = requests
   waiting); once requests stop for a second after a burst,
   freed memory is handed back (``heap.tidy``);
6. stop on ``Stop`` (reply ``Ok``, exit 0), on SIGTERM (exit 143 after the same orderly stop),
   when the supervisor is gone (exit 0), or, with ``launch.idle_exit`` > 0, after that many
   seconds without work (exit 0, reason "idle"; see ``idle_due``): ``on_stop`` runs, the
   mailbox file is removed.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import time

import structlog
import zmq
import zmq.asyncio

from mutagen_actors.wire import schema as _schema  # noqa: F401 - preload the message schema
from mutagen_actors.wire.handling import answer
from mutagen_actors.wire.messages.actor import GetStatistics, KeepAwake, Statistics, Stop
from mutagen_actors.wire.messages.base import Ok
from mutagen_actors.wire.sockets import Mailbox

from . import heap, logs
from .admission import admit, is_concurrent
from .actor import ActorContext, ActorCrash
from .launch import ActorLaunch

EXIT_SIGTERM = 128 + signal.SIGTERM
IDLE_RECHECK = 1.0  # seconds between checks while a busy actor is past its idle delay


def idle_due(last_work: float, idle_exit: float, now: float, *, queued: int, handling: bool,
             busy: bool) -> float:
    """Seconds until an actor with an idle exit may stop: 0 = now. ``last_work`` is the
    monotonic time of the last request received or handled (heartbeats and statistics do not
    count). Never while a request waits or is handled or the actor is ``busy``."""
    remaining = last_work + idle_exit - now
    if remaining > 0:
        return remaining
    if queued or handling or busy:
        return min(idle_exit, IDLE_RECHECK)
    return 0.0


def run(launch: ActorLaunch, ready) -> None:
    """Process body; ends with ``SystemExit`` carrying the exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logs.configure(launch.log_path, launch.log_level, session=launch.session, actor=launch.actor_id)
    log = structlog.get_logger("actor")
    try:
        status = asyncio.run(_main(launch, ready, log))
    except BaseException as error:  # noqa: BLE001 - the status tells the supervisor
        if isinstance(error, SystemExit):
            raise
        log.exception("actor failed")
        status = 1
    raise SystemExit(status)


def _report(ready, message) -> None:
    if ready is None:
        return
    try:
        ready.send(message)
        ready.close()
    except OSError:
        pass  # the supervisor went away; the pidfd watch ends us


async def _main(launch: ActorLaunch, ready, log) -> int:
    loop = asyncio.get_running_loop()
    stopped = loop.create_future()

    def stop(status: int, why: str) -> None:
        if not stopped.done():
            log.info("actor stopping", reason=why)
            stopped.set_result(status)

    loop.add_signal_handler(signal.SIGTERM, stop, EXIT_SIGTERM, "SIGTERM")
    try:
        pidfd = os.pidfd_open(launch.supervisor_pid)
    except ProcessLookupError:
        _report(ready, ("failed", "supervisor is gone"))
        return 1
    loop.add_reader(pidfd, stop, 0, "supervisor exited")

    context = zmq.asyncio.Context()
    mailbox = Mailbox(context, launch.mailbox, log=log)
    try:
        try:
            module_name, _, class_name = launch.actor_class.partition(":")
            actor_class = getattr(importlib.import_module(module_name), class_name)
            # Message types the actor only passes on: received header-only (wire.sockets).
            mailbox.relay = frozenset(getattr(actor_class, "RELAY", ()))
            mailbox.bind()
            actor = actor_class(ActorContext(launch, log, context))
        except Exception as error:  # noqa: BLE001 - reported as the failure reason
            log.exception("actor could not be set up")
            _report(ready, ("failed", f"set-up failed: {type(error).__name__}: {error}"))
            return 1
        try:
            await actor.on_start()
        except Exception as error:  # noqa: BLE001 - reported as the failure reason
            log.error("actor failed to start", error=f"{type(error).__name__}: {error}")
            _report(ready, ("failed", f"on_start raised {type(error).__name__}: {error}"))
            return 1
        started = time.time()
        _report(ready, ("ready", os.getpid()))
        log.info("actor ready", mailbox=launch.mailbox, restarts=launch.restarts)
        status = await _serve(actor, mailbox, launch, started, stopped, stop, log)
        try:
            await actor.on_stop()
        except Exception:  # noqa: BLE001
            log.exception("on_stop failed")
        log.info("actor stopped", status=status)
        return status
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        mailbox.close()
        context.destroy(linger=0)  # closes any socket an actor left open; never blocks


async def set_within(event: asyncio.Event, timeout: float) -> bool:
    """Whether ``event`` is set within ``timeout`` seconds. A cancel is never lost: with
    ``asyncio.wait_for`` (Python 3.11) a cancel that came as the event was set was swallowed,
    and an actor stopped right after answering a request waited for ``tidy`` until killed."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=timeout)
    finally:
        waiter.cancel()
    return bool(done)


async def _serve(actor, mailbox, launch, started, stopped, stop, log) -> int:
    queue: asyncio.Queue = asyncio.Queue()
    counters = {"handled": 0, "last": time.time()}

    work_clock = {"last": time.monotonic(), "handling": 0}  # handling: requests being handled

    async def receive() -> None:
        while True:
            request = await mailbox.receive()
            counters["last"] = time.time()
            if not isinstance(request.body, GetStatistics):
                work_clock["last"] = time.monotonic()
            queue.put_nowait(request)
            del request  # the worker owns it now (see below)

    async def idle() -> None:
        """Hibernation: stop (status 0) after ``launch.idle_exit`` seconds without work."""
        while True:
            due = idle_due(work_clock["last"], launch.idle_exit, time.monotonic(),
                           queued=queue.qsize(), handling=work_clock["handling"] > 0,
                           busy=actor.busy())
            if due <= 0:
                stop(0, f"idle: no work for {launch.idle_exit:g} s (hibernating)")
                return
            await asyncio.sleep(due)

    busy = asyncio.Event()

    async def tidy() -> None:
        """Once requests stop for ``heap.QUIET_SECONDS`` after a burst, give memory back."""
        while True:
            await busy.wait()
            busy.clear()
            while await set_within(busy, heap.QUIET_SECONDS):
                busy.clear()
            heap.tidy()

    concurrent_types = tuple(getattr(actor, "CONCURRENT", ()))
    bound = int(getattr(actor, "MAX_CONCURRENT", 1))
    running: set = set()  # tasks of the concurrent requests being handled (see admission)

    async def handle_one(request) -> bool:
        """Answer one actor request; False when the actor crashed (the process stops)."""
        body = request.body
        work_clock["handling"] += 1
        try:
            reply = await answer(actor.handle, body, log)
        except ActorCrash as crash:
            log.error("actor crashed", reason=str(crash))
            stop(1, f"crash: {crash}")
            return False
        finally:
            work_clock["handling"] -= 1
            work_clock["last"] = time.monotonic()
        counters["handled"] += 1
        counters["last"] = time.time()
        await request.reply(reply)
        # Do not keep the last request and its reply (a whole snapshot, a transition's
        # results) alive until the next request arrives.
        del request, body, reply
        busy.set()
        return True

    async def wait_for_room(concurrent: bool) -> None:
        while running and not admit(concurrent, len(running), bound):
            await asyncio.wait(set(running), return_when=asyncio.FIRST_COMPLETED)

    async def work() -> None:
        while True:
            request = await queue.get()
            body = request.body
            if isinstance(body, Stop):
                await wait_for_room(False)
                await request.reply(Ok())
                stop(0, "Stop requested")
                return
            if isinstance(body, (GetStatistics, KeepAwake)):
                if isinstance(body, GetStatistics):
                    reply = Statistics(os.getpid(), queue.qsize(), counters["handled"],
                                       max(counters["last"], mailbox.last_activity),
                                       launch.restarts, started)
                else:
                    reply = Ok()  # receiving it restarted the idle clock
                counters["handled"] += 1
                counters["last"] = time.time()
                await request.reply(reply)
                del request, body, reply
                continue
            concurrent = is_concurrent(body, concurrent_types, bound)
            del body
            await wait_for_room(concurrent)
            if concurrent:
                task = asyncio.ensure_future(handle_one(request))
                running.add(task)
                task.add_done_callback(running.discard)
                del task
            elif not await handle_one(request):
                return
            del request

    tasks = [asyncio.ensure_future(receive()), asyncio.ensure_future(work()),
             asyncio.ensure_future(tidy())]
    if launch.idle_exit > 0:
        tasks.append(asyncio.ensure_future(idle()))
    try:
        return await stopped
    finally:
        tasks.extend(running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
