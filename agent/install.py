"""Starting a remote agent over a transport, installing it first when needed.

``connect_agent(transport, cache_directory=..., progress=...)`` returns an ``AgentConnection``
(the running agent process, the handshake done, a started ``wire.tunnel.Tunnel``). Sequence:

1. Start ``python3 -I -c BOOT <identity> serve`` (one remote command: no shell needed, so it
   works the same over SSH and ``docker exec``). ``BOOT`` finds
   ``~/.mutagen-actors/agents/<identity>/``; if that install is missing, incomplete or made for
   another Python, it exits with ``NOT_INSTALLED`` (3) and says so on stderr.
2. Then (progress "Probing remote...") ``PROBE`` reports OS, machine, Python version and
   implementation, libc and home; no python3, or one older than 3.10, is an ``AgentError``
   saying what is needed. (progress "Copying agent...") the bundle for that platform
   (``agent.bundle``) is streamed into ``python3 -I -c UNPACK`` on the remote, which
   (progress "Installing agent...") extracts it next to the final directory, compiles its byte
   code there (so the first start imports instead of compiling: on a busy remote that compile
   took seconds, inside the start's handshake deadline), marks it complete,
   renames it into place (unless a concurrent install of the same version finished first: an
   agent running from there is never pulled from under it) and deletes other versions unused
   for ``KEEP_UNUSED`` seconds (each start marks its version used: another daemon of another
   version, e.g. on a second machine, keeps its agent); (progress "Starting agent...") then
   step 1 again.
3. The handshake (``wire.handshake``) on the agent's stdout: garbage printed by a shell or a
   broken agent is quoted in the error; a missing ``python3`` is reported as such.

The second connect is step 1 only (one remote process start; measured in the tests).

Every step has a deadline; failures are ``AgentError`` (or ``TransportError`` from the
transport) with one line naming the remote and what went wrong, plus the agent's stderr.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Callable, Optional

import structlog

from mutagen_actors.wire import handshake
from mutagen_actors.wire.tunnel import DataHandler, Tunnel, TunnelClosed, lz4_available

from .bundle import RemotePlatform, agent_identity, build_bundle
from .transports import Completed, Transport, TransportError, run_collect

MINIMUM_PYTHON = (3, 10)
NOT_INSTALLED = 3
NOT_INSTALLED_MARKER = "mutagen-actors agent not installed"
AGENTS_DIRECTORY = ".mutagen-actors/agents"
KEEP_UNUSED = 24 * 3600  # another version's agent is deleted by an install once unused this long
STDERR_KEPT = 32 * 1024

log = structlog.get_logger("agent.install")

# Runs on the remote (python3 >= 3.10 when it matters; written for any python3 so the version
# error is ours). argv: identity command...
BOOT = (
    "import os,sys\n"
    "i=sys.argv[1]\n"
    "d=os.path.join(os.path.expanduser('~'),'.mutagen-actors','agents',i)\n"
    "try:\n"
    " t=open(os.path.join(d,'.installed')).read().strip()\n"
    "except OSError:\n"
    " t=''\n"
    "if t!=sys.implementation.cache_tag:\n"
    " sys.stderr.write('" + NOT_INSTALLED_MARKER + ": '+d+'\\n');sys.exit(3)\n"
    "try:\n"
    " os.utime(os.path.join(d,'.installed'))\n"  # used now: installs of others keep it
    "except OSError:\n"
    " pass\n"
    "sys.path.insert(0,d)\n"
    # asyncio and secrets without loading OpenSSL, as in the fork server (the reasons and
    # the rules: actors/runtime/without_openssl.py); hashlib is then imported afresh when used.
    "sys.modules['ssl']=sys.modules['_hashlib']=None\n"
    "import asyncio,secrets\n"
    "del sys.modules['ssl'],sys.modules['_hashlib']\n"
    "sys.modules.pop('hashlib',None)\n"
    "from mutagen_actors.agent.remote_main import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)

PROBE = (
    "import json,os,platform,sys\n"
    "l=platform.libc_ver()\n"
    "print(json.dumps({'system':platform.system(),'machine':platform.machine(),"
    "'python':list(sys.version_info[:3]),'implementation':sys.implementation.name,"
    "'cache_tag':sys.implementation.cache_tag,'libc':l[0],'libc_version':l[1],"
    "'home':os.path.expanduser('~')}))\n"
)

# argv: identity cache_tag; the bundle (tar.gz) on stdin.
UNPACK = (
    "import os,secrets,shutil,sys,tarfile,time\n"
    "i,tag=sys.argv[1],sys.argv[2]\n"
    "b=os.path.join(os.path.expanduser('~'),'.mutagen-actors','agents')\n"
    "os.makedirs(b,mode=0o700,exist_ok=True)\n"
    "t=os.path.join(b,'.tmp-'+secrets.token_hex(6))\n"
    "os.mkdir(t,0o700)\n"
    "with tarfile.open(fileobj=sys.stdin.buffer,mode='r|gz') as a:\n"
    " if hasattr(tarfile,'data_filter'):a.extraction_filter=tarfile.data_filter\n"
    " a.extractall(t)\n"
    "d=os.path.join(b,i)\n"
    "try:\n"
    " import compileall\n"
    " compileall.compile_dir(t,quiet=2,ddir=d)\n"
    "except Exception:\n"
    " pass\n"
    "open(os.path.join(t,'.installed'),'w').write(tag)\n"
    "def done():\n"
    " try:return open(os.path.join(d,'.installed')).read().strip()==tag\n"
    " except OSError:return False\n"
    "if done():shutil.rmtree(t)\n"
    "else:\n"
    " if os.path.exists(d):os.rename(d,os.path.join(b,'.old-'+secrets.token_hex(6)))\n"
    " try:os.rename(t,d)\n"
    " except OSError:\n"
    "  if not done():raise\n"
    "  shutil.rmtree(t)\n"
    "def age(p):\n"
    " try:return time.time()-os.stat(p).st_mtime\n"
    " except OSError:return 1e12\n"
    "for n in os.listdir(b):\n"
    " p=os.path.join(b,n)\n"
    " if n==i or (n.startswith('.tmp-') and age(p)<3600):continue\n"
    " if not n.startswith('.') and age(os.path.join(p,'.installed'))<" + str(KEEP_UNUSED) + ":continue\n"
    " shutil.rmtree(p,ignore_errors=True)\n"
    "print(d)\n"
)


class AgentError(RuntimeError):
    """The agent cannot be installed or started on a remote; the text says why and what to do."""


Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


def parse_probe(description: str, completed: Completed) -> RemotePlatform:
    """Turn the probe's result into a platform, or the error a user should read (pure)."""
    err = completed.stderr.decode(errors="replace").strip()
    if completed.status in (126, 127) or "python3: not found" in err or \
            "executable file not found" in err or "No such file or directory" in err and not completed.stdout:
        raise AgentError(f"{description} has no python3: the agent needs python3 >= "
                         f"{MINIMUM_PYTHON[0]}.{MINIMUM_PYTHON[1]} on the PATH there "
                         f"(nothing else: no pip, no venv){_said(err)}")
    if completed.status != 0:
        raise AgentError(f"probing {description} failed with status {completed.status}{_said(err)}")
    line = completed.stdout.decode(errors="replace").strip().splitlines()
    try:
        found = json.loads(line[-1])
        platform = RemotePlatform(found["system"], found["machine"], tuple(found["python"]),
                                  found["implementation"], found["cache_tag"], found["libc"],
                                  found["libc_version"], found["home"])
    except (IndexError, KeyError, TypeError, ValueError):
        raise AgentError(f"probing {description} printed something unexpected: "
                         f"{handshake.describe_garbage(completed.stdout)}{_said(err)}") from None
    if platform.python[:2] < MINIMUM_PYTHON:
        version = ".".join(map(str, platform.python))
        raise AgentError(f"{description} has python3 {version}; the agent needs python3 >= "
                         f"{MINIMUM_PYTHON[0]}.{MINIMUM_PYTHON[1]}")
    if platform.implementation != "cpython":
        raise AgentError(f"{description} runs {platform.implementation}; the agent needs CPython")
    return platform


def _said(stderr: str) -> str:
    stderr = stderr.strip()
    if not stderr:
        return ""
    lines = stderr.splitlines()
    return f" (it said: {lines[-1][:300]})"


async def probe(transport: Transport, *, timeout: float = 20.0) -> RemotePlatform:
    completed = await run_collect(transport, ["python3", "-I", "-c", PROBE], timeout=timeout)
    return parse_probe(transport.description, completed)


async def install(transport: Transport, platform: RemotePlatform, *, cache_directory: str,
                  progress: Progress = _quiet, timeout: float = 120.0) -> str:
    """Push and unpack the bundle; returns the remote agent directory."""
    loop = asyncio.get_running_loop()
    # The bundle is built in a worker thread; its progress is reported from the event loop
    # (callers' progress callbacks log and update actor state, none of it thread-safe).
    path = await asyncio.to_thread(build_bundle, platform, cache_directory,
                                   progress=lambda text: loop.call_soon_threadsafe(progress, text))
    progress("Copying agent...")
    with open(path, "rb") as handle:
        data = handle.read()
    completed = await run_collect(
        transport, ["python3", "-I", "-c", UNPACK, agent_identity(), platform.cache_tag],
        input=data, timeout=timeout, written=lambda: progress("Installing agent..."))
    if completed.status != 0:
        raise AgentError(f"installing the agent on {transport.description} failed with status "
                         f"{completed.status}{_said(completed.stderr.decode(errors='replace'))}")
    return completed.stdout.decode(errors="replace").strip()


@dataclass
class AgentConnection:
    """A running agent: its process, the agreed features and the tunnel (started)."""

    transport: Transport
    process: object
    tunnel: Tunnel
    features: int
    stderr: bytearray
    _stderr_task: Optional[asyncio.Task] = None

    def stderr_text(self) -> str:
        return self.stderr.decode(errors="replace")

    async def close(self, reason: str = "closed by the daemon") -> None:
        await self.tunnel.close(reason)
        try:
            await asyncio.wait_for(self.process.wait(), 3)
        except asyncio.TimeoutError:
            self.process.terminate()
        if self._stderr_task is not None:
            self._stderr_task.cancel()


async def _keep_stderr(stream, sink: bytearray) -> None:
    try:
        while True:
            chunk = await stream.read(4096)
            if not chunk:
                return
            room = STDERR_KEPT - len(sink)
            if room > 0:
                sink += chunk[:room]
    except (asyncio.CancelledError, Exception):  # noqa: BLE001 - best effort
        return


async def _exit_status(process, wait: float = 2.0) -> int | None:
    try:
        return await asyncio.wait_for(process.wait(), wait)
    except asyncio.TimeoutError:
        return None


async def start_agent(transport: Transport, on_data: DataHandler, *, compression: bool = True,
                      argv: list[str] | None = None, handshake_timeout: float = 10.0,
                      heartbeat_interval: float = 1.0) -> AgentConnection:
    """Start the agent (no install) and complete the handshake.

    Raises ``AgentError``; its ``not_installed`` attribute is True when the install is missing.
    ``argv`` replaces the agent command (tests start other programs to see how failures read).
    """
    argv = argv or ["python3", "-I", "-c", BOOT, agent_identity(), "serve"]
    try:
        process = await asyncio.wait_for(transport.run(argv), handshake_timeout)
    except asyncio.TimeoutError:
        raise AgentError(f"{transport.description} did not start the agent's command within "
                         f"{handshake_timeout:g} s") from None
    stderr = bytearray()
    stderr_task = asyncio.get_running_loop().create_task(_keep_stderr(process.stderr, stderr))
    offer = handshake.FEATURE_LZ4 if compression and lz4_available() else 0
    try:
        features = await handshake.exchange(process.stdout, process.stdin, offer,
                                            timeout=handshake_timeout)
    except (handshake.HandshakeError, ConnectionError, OSError) as error:
        status = await _exit_status(process)
        await asyncio.sleep(0)
        process.terminate()
        text = stderr.decode(errors="replace")
        stderr_task.cancel()
        failure = AgentError(_explain_start_failure(transport.description, error, status, text))
        failure.not_installed = status == NOT_INSTALLED and NOT_INSTALLED_MARKER in text
        failure.status = status
        raise failure from None
    tunnel = Tunnel(process.stdout, process.stdin, on_data, compression=bool(features & handshake.FEATURE_LZ4),
                    interval=heartbeat_interval, peer=f"agent on {transport.description}")
    tunnel.start()
    return AgentConnection(transport, process, tunnel, features, stderr, stderr_task)


def _explain_start_failure(description: str, error: Exception, status, stderr: str) -> str:
    if status in (126, 127) and "python3" in stderr:
        return (f"{description} has no python3: the agent needs python3 >= "
                f"{MINIMUM_PYTHON[0]}.{MINIMUM_PYTHON[1]} on the PATH there{_said(stderr)}")
    if status == NOT_INSTALLED and NOT_INSTALLED_MARKER in stderr:
        return f"the agent is not installed on {description}"
    message = str(error)
    if status is not None and status != 0:
        message += f"; it exited with status {status}"
    return message + _said(stderr)


async def connect_agent(transport: Transport, on_data: DataHandler, *, cache_directory: str,
                        progress: Progress = _quiet, compression: bool = True,
                        heartbeat_interval: float = 1.0) -> AgentConnection:
    """Start the agent, installing it first when it is missing (see the module docstring)."""
    try:
        return await start_agent(transport, on_data, compression=compression,
                                 heartbeat_interval=heartbeat_interval)
    except AgentError as error:
        if not getattr(error, "not_installed", False) and getattr(error, "status", None) not in (126, 127):
            raise
        first = error
    progress("Probing remote...")
    platform = await probe(transport)  # explains a missing or old python3
    if not getattr(first, "not_installed", False):
        raise first
    directory = await install(transport, platform, cache_directory=cache_directory,
                              progress=progress)
    log.info("agent installed", remote=transport.description, directory=directory)
    progress("Starting agent...")
    return await start_agent(transport, on_data, compression=compression,
                             heartbeat_interval=heartbeat_interval)


__all__ = ["AgentConnection", "AgentError", "TransportError", "TunnelClosed", "connect_agent",
           "install", "probe", "start_agent", "parse_probe"]
