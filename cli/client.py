"""The CLI's connection to the daemon: connect, version check, autostart, bounded waits.

Rules:
- connecting and the ``Hello``/``Welcome`` exchange share one deadline (``ANSWER_TIMEOUT``); a
  daemon that is alive but does not answer (hung, SIGSTOP) gives ``daemon did not answer within
  N s (...)`` instead of a hang;
- no socket or a refused connection means no daemon: commands that need one start it in the
  background (``Started mutagen-actors daemon in background ...`` once on stderr) unless
  ``MUTAGEN_ACTORS_DISABLE_AUTOSTART=1``;
- versions must match exactly: ``client/daemon version mismatch (daemon restart recommended)``;
- ``enable_prompting`` (``create``/``resume`` on a terminal): the daemon's questions during the
  following requests are answered on the terminal (``prompting``).
"""

from __future__ import annotations

import os
import select
import sys
import time

from mutagen_actors.supervisor import datadir
from mutagen_actors.wire.errors import ProtocolError, RemoteError, RequestTimeout
from mutagen_actors.wire.messages.control import Hello, Welcome
from mutagen_actors.wire.stream_client import StreamClient
from mutagen_actors.wire.version import VERSION

from .errors import CliError
from . import output

ANSWER_TIMEOUT = 3.0
START_TIMEOUT = 20.0
AUTOSTART_NOTICE = ('Started mutagen-actors daemon in background '
                    '(terminate with "mutagen-actors daemon stop")')
VERSION_MISMATCH = "client/daemon version mismatch (daemon restart recommended)"
_started: list = []  # background daemons started by this CLI process (kept referenced)


class DaemonNotRunning(Exception):
    pass


def hung_message(timeout: float) -> str:
    return (f"daemon did not answer within {timeout:g} s "
            "(is it stopped or hung? see `mutagen-actors daemon log`)")


def paths() -> datadir.Paths:
    try:
        return datadir.resolve()
    except datadir.DataDirectoryError as error:
        raise CliError(str(error)) from None


class Connection:
    def __init__(self, client: StreamClient, welcome: Welcome, paths: datadir.Paths):
        self.client = client
        self.welcome = welcome
        self.paths = paths
        self.on_question = None

    def enable_prompting(self, on_question) -> None:
        """Tell the daemon this command can answer questions; ``on_question(PromptQuestion)``
        -> ``PromptAnswer`` answers them during later requests."""
        from mutagen_actors.wire.messages.control import EnablePrompting

        self.request(EnablePrompting(), ANSWER_TIMEOUT)
        self.on_question = on_question

    def request(self, body, timeout: float):
        """Send ``body`` and return the reply; every failure becomes a ``CliError``."""
        try:
            return self.client.request(body, timeout, self.on_question)
        except RequestTimeout:
            raise CliError(hung_message(timeout)) from None
        except RemoteError as error:
            raise CliError(error.message) from None
        except ProtocolError as error:
            raise CliError(f"invalid answer from the daemon: {error}") from None
        except OSError as error:
            raise CliError(f"lost the connection to the daemon: {error}") from None

    def close(self) -> None:
        self.client.close()


def _open(where: datadir.Paths, timeout: float) -> Connection:
    """Connect and exchange versions. Raises ``DaemonNotRunning`` or ``CliError``."""
    deadline = time.monotonic() + timeout
    client = StreamClient(where.socket)
    try:
        client.connect(timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        raise DaemonNotRunning() from None
    except PermissionError:
        raise CliError(f"cannot connect to the daemon socket {where.socket}: permission denied") from None
    except RequestTimeout:
        raise CliError(hung_message(timeout)) from None
    try:
        welcome = client.request(Hello(VERSION), max(deadline - time.monotonic(), 0.05))
    except RequestTimeout:
        client.close()
        raise CliError(hung_message(timeout)) from None
    except ProtocolError as error:
        client.close()
        if "version" in str(error):
            raise CliError(VERSION_MISMATCH) from None
        raise CliError(f"invalid answer from the daemon: {error}") from None
    except RemoteError as error:
        client.close()
        if error.code in ("protocol", "version-mismatch") and "version" in error.message:
            raise CliError(VERSION_MISMATCH) from None
        raise CliError(error.message) from None
    except OSError:
        client.close()
        raise DaemonNotRunning() from None  # it went away between connect and answer
    if not isinstance(welcome, Welcome):
        client.close()
        raise CliError(f"invalid answer from the daemon: {type(welcome).__name__}")
    if welcome.daemon_version != VERSION:
        client.close()
        raise CliError(VERSION_MISMATCH)
    return Connection(client, welcome, where)


def connect(*, autostart: bool = True) -> Connection:
    where = paths()
    try:
        return _open(where, ANSWER_TIMEOUT)
    except DaemonNotRunning:
        if not autostart:
            raise
    if os.environ.get("MUTAGEN_ACTORS_DISABLE_AUTOSTART") == "1":
        raise CliError("the daemon is not running and autostart is disabled "
                       "(MUTAGEN_ACTORS_DISABLE_AUTOSTART=1); run `mutagen-actors daemon start`")
    connection = start_background(where)
    output.notice(AUTOSTART_NOTICE)
    return connection


def start_background(where: datadir.Paths) -> Connection:
    """Launch ``daemon run`` detached (new session, stdio to ``daemon/daemon.out``) and wait until
    it answers. Another daemon winning the lock race is fine: we then wait for that one."""
    import subprocess  # only when starting a daemon: kept out of every command's start-up

    from mutagen_actors.supervisor import lock

    try:
        datadir.prepare(where)
    except (datadir.DataDirectoryError, OSError) as error:
        raise CliError(str(error)) from None
    with open(where.output, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mutagen_actors.cli", "daemon", "run"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            env={**os.environ, datadir.ENVIRONMENT_VARIABLE: where.root}, close_fds=True)
    _started.append(process)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            return _open(where, ANSWER_TIMEOUT)
        except DaemonNotRunning:
            pass
        status = process.poll()
        if status is not None and lock.holder(where.lock) is None:
            raise CliError(f"the daemon failed to start (exit status {status}): "
                           f"{_last_line(where.output)} (see {where.output})")
        time.sleep(0.02)  # waiting for the socket to appear, bounded by the deadline
    raise CliError(f"the daemon did not answer within {START_TIMEOUT:g} s of starting "
                   f"(see {where.output} and {where.log})")


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(stream.tell() - 4096, 0))
            lines = [line for line in stream.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no output"
    return lines[-1].strip() if lines else "no output"


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait (pidfd, no polling) until process ``pid`` has exited; False past the deadline."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(pidfd)
