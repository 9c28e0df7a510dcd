"""SSH transport on asyncssh: one connection, one channel per command.

The user's OpenSSH set-up applies: ``<ssh dir>/config`` (Host aliases, HostName, Port, User,
IdentityFile, ProxyJump, ... as asyncssh reads them), the ssh-agent (``SSH_AUTH_SOCK``) and
``<ssh dir>/known_hosts`` plus ``/etc/ssh/ssh_known_hosts``. ``<ssh dir>`` is ``~/.ssh`` unless
``ssh_directory`` is given (tests use a private one).

Host keys are never accepted silently. A key that is not in known_hosts fails with
"host key for H is not known (add it to known_hosts ...)"; a key that differs from the one on
record fails with "host key for H has changed ...". A ``prompter``, when given, is asked about
an unknown key (answer "yes": the key is appended to known_hosts and the connection retried); a
changed key is never accepted, prompter or not. Known hosts are always checked against those
files, even if the ssh config says ``UserKnownHostsFile none`` (asyncssh would then check
nothing), and ``ProxyJump`` hops are connected here one by one under the same rules (asyncssh
would connect them with its own defaults). A hop's failure names that hop.

Passwords and keyboard-interactive questions go to the ``prompter`` when there is one (at most
``PASSWORD_ATTEMPTS`` passwords per connect, like OpenSSH's NumberOfPasswordPrompts); without
one, only key and agent authentication are tried. A declined key reads "host key for H (...) was
not accepted"; a refused password "unable to authenticate to H: ... (the password was not
accepted)". Time spent waiting for the user's answer does not count against the connect
deadline (``prompt_time``).

Ciphers: AES-GCM first (about twice chacha20-poly1305's throughput where the CPU has AES-NI),
then asyncssh's other defaults. The connect (TCP + key exchange + authentication) has a
deadline (``connect_timeout``, default 5 s, like Mutagen's ``-oConnectTimeout=5``); failures
read "unable to connect to H:P: reason".
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shlex
import socket
from typing import Optional, Sequence

import asyncssh
import structlog

from . import Prompter, TransportError
from .prompt_time import clocked, within

DEFAULT_CONNECT_TIMEOUT = 5.0
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
GLOBAL_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
PASSWORD_ATTEMPTS = 3

log = structlog.get_logger("agent.transports.ssh")


def preferred_ciphers(available: Sequence[bytes]) -> list[str]:
    """AES-GCM first, then the rest in their own order (pure)."""
    names = [c.decode() if isinstance(c, bytes) else c for c in available]
    first = [c for c in PREFERRED_CIPHERS if c in names]
    return first + [c for c in names if c not in first]


def describe(user: str, host: str, port: int) -> str:
    user_part = f"{user}@" if user else ""
    return f"{user_part}{host}:{port}" if port else f"{user_part}{host}"


class _KnownHosts:
    """The known_hosts lookup handed to asyncssh; remembers what it was asked and found."""

    def __init__(self, paths: list[str]):
        self.paths = paths
        self.asked: tuple[str, str, Optional[int]] | None = None
        self.had_keys = False

    def __call__(self, host, addr, port):
        self.asked = (host, addr, port)
        existing = [p for p in self.paths if os.path.isfile(p)]
        if not existing:
            return ((), (), ())
        result = asyncssh.read_known_hosts(existing).match(host, addr, port)
        self.had_keys = bool(result[0]) or bool(result[1])
        return result


class _Client(asyncssh.SSHClient):
    def __init__(self, prompter: Prompter | None):
        self.prompter = prompter
        self.offered_key: asyncssh.SSHKey | None = None
        self.passwords = 0  # passwords asked for

    def validate_host_public_key(self, host, addr, port, key) -> bool:
        self.offered_key = key  # not trusted: remembered for the error or the question
        return False

    async def password_auth_requested(self):
        if self.prompter is None or self.passwords >= PASSWORD_ATTEMPTS:
            return None
        answer = await self.prompter("password", "Password: ", False)
        if answer is not None:
            self.passwords += 1  # a password was tried (nobody answering is not a refusal)
        return answer

    def kbdint_auth_requested(self):
        return "" if self.prompter is not None else None

    async def kbdint_challenge_received(self, name, instructions, lang, prompts):
        answers = []
        for text, echo in prompts:
            answer = await self.prompter("kbdint", "\n".join(filter(None, (instructions, text))), echo)
            if answer is None:
                return None
            answers.append(answer)
        return answers


class _Process:
    """``RemoteProcess`` over an asyncssh client process."""

    def __init__(self, process: asyncssh.SSHClientProcess):
        self._process = process
        self.stdin = process.stdin
        self.stdout = process.stdout
        self.stderr = process.stderr

    async def wait(self) -> int:
        completed = await self._process.wait()
        if completed.exit_signal:
            return -_signal_number(completed.exit_signal[0])
        status = completed.exit_status
        return 255 if status is None or status < 0 else status

    def terminate(self) -> None:
        self._process.close()


def _signal_number(name: str) -> int:
    import signal

    return getattr(signal, "SIG" + name, signal.SIGTERM)


class SshTransport:
    def __init__(self, connection: asyncssh.SSHClientConnection, description: str, hops=()):
        self.connection = connection
        self.description = description
        self.hops = list(hops)  # ProxyJump connections, first hop first

    @classmethod
    async def connect(cls, url, *, ssh_directory: str | None = None,
                      connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                      prompter: Prompter | None = None, keepalive_interval: float = 15.0,
                      **_ignored) -> "SshTransport":
        """Connect to ``url`` (``supervisor.urls.Url`` of protocol ssh); see the module rules.

        ``ProxyJump`` hops are connected here, one by one, with the same host key rules (asyncssh
        would connect them with its own defaults)."""
        directory = os.path.expanduser(ssh_directory or "~/.ssh")
        settings = _Settings(directory, connect_timeout, clocked(prompter), keepalive_interval,
                             explicit_directory=ssh_directory is not None)
        tunnel = None
        hops = []
        try:
            for hop in proxy_jumps(settings.config, url.host, url.user, url.port):
                tunnel = await _connect_once(settings, *hop, tunnel)
                hops.append(tunnel)
            connection = await _connect_once(settings, url.host, url.user, url.port, tunnel)
        except BaseException:
            for hop in reversed(hops):
                hop.close()
            raise
        return cls(connection, describe(url.user, url.host, url.port), hops)

    async def run(self, argv: Sequence[str]) -> _Process:
        """Run ``argv`` on the remote. sshd hands the command line to the login shell, so it is
        prefixed with ``exec``: the shell is replaced by the program instead of staying
        resident in front of it (~2 MB per agent) and signals reach the program itself."""
        command = "exec " + shlex.join(argv)
        try:
            process = await self.connection.create_process(command, encoding=None)
        except (asyncssh.Error, OSError) as error:
            raise TransportError(f"unable to run a command on {self.description}: {error}") from None
        return _Process(process)

    async def copy(self, local_path: str, remote_path: str) -> None:
        try:
            async with self.connection.start_sftp_client() as sftp:
                await sftp.put(local_path, remote_path)
        except (asyncssh.Error, OSError) as error:
            raise TransportError(f"unable to copy {local_path} to {self.description}:"
                                 f"{remote_path}: {error}") from None

    async def close(self) -> None:
        for connection in [self.connection, *reversed(self.hops)]:
            connection.close()
            try:
                await asyncio.wait_for(connection.wait_closed(), 2)
            except (asyncio.TimeoutError, asyncssh.Error, OSError):
                pass


class _Settings:
    def __init__(self, directory, connect_timeout, prompter, keepalive_interval, *,
                 explicit_directory):
        self.directory = directory
        self.config = os.path.join(directory, "config")
        self.known_hosts = os.path.join(directory, "known_hosts")
        self.connect_timeout = connect_timeout
        self.prompter = prompter
        self.keepalive_interval = keepalive_interval
        self.explicit_directory = explicit_directory


def _config_for(config: str, host: str, user: str, port: int):
    import getpass

    from asyncssh.config import SSHClientConfig

    return SSHClientConfig.load(None, [config] if os.path.isfile(config) else [], False, False,
                                False, getpass.getuser(), user or (), host, port or ())


def resolve(config: str, host: str, user: str = "", port: int = 0) -> tuple[str, int]:
    """(HostName, Port) the ssh config gives for ``host`` (for messages)."""
    loaded = _config_for(config, host, user, port)
    return loaded.get("Hostname", host) or host, port or loaded.get("Port", 22) or 22


def proxy_jumps(config: str, host: str, user: str, port: int) -> list[tuple[str, str, int]]:
    """The ``ProxyJump`` hops the ssh config gives for this host, as (host, user, port)."""
    if not os.path.isfile(config):
        return []
    value = _config_for(config, host, user, port).get("ProxyJump")
    if not value or value == "none":
        return []
    hops = []
    for hop in value.split(","):
        hop_user, _, hop_host = hop.rpartition("@")
        hop_port = 0
        if hop_host.count(":") == 1:
            hop_host, text = hop_host.split(":")
            hop_port = int(text)
        hops.append((hop_host, hop_user, hop_port))
    return hops


async def _check_name(config: str, host: str, user: str, port: int, timeout: float) -> None:
    """Resolve the host the ssh config names (its ``HostName``) within ``timeout``, in the loop's
    resolver thread: a name that does not exist, or a resolver that does not answer, is a clear
    ``TransportError`` within the connect deadline (a lookup stuck elsewhere could outlast it)."""
    target, target_port = resolve(config, host, user, port)
    try:
        ipaddress.ip_address(target)
        return
    except ValueError:
        pass
    try:
        await asyncio.wait_for(asyncio.get_running_loop().getaddrinfo(
            target, target_port, type=socket.SOCK_STREAM), timeout)
    except (asyncio.TimeoutError, TimeoutError):
        raise TransportError(f"unable to connect to {target}:{target_port}: the name resolver "
                             f"did not answer within {timeout:g} s") from None
    except OSError as error:
        raise TransportError(f"unable to connect to {target}:{target_port}: "
                             f"{connect_failure_reason(error)}") from None


async def _connect_once(settings: _Settings, host: str, user: str, port: int, tunnel):
    """One SSH connection (over ``tunnel`` when given) with the module's rules."""
    name = describe(user, host, port)
    retried = False
    if tunnel is None:  # through a ProxyJump the jump host resolves the name
        await _check_name(settings.config, host, user, port, settings.connect_timeout)
    while True:
        known = _KnownHosts([settings.known_hosts, GLOBAL_KNOWN_HOSTS])
        client = _Client(settings.prompter)
        options = dict(
            config=[settings.config] if os.path.isfile(settings.config) else [],
            known_hosts=known,
            encryption_algs=preferred_ciphers(asyncssh.encryption.get_default_encryption_algs()),
            connect_timeout=settings.connect_timeout,
            keepalive_interval=settings.keepalive_interval,
            keepalive_count_max=3,
            client_factory=lambda: client,
            tunnel=tunnel,
        )
        if settings.prompter is not None:
            options["connect_timeout"] = None  # ``within`` below: prompts do not count
        if port:
            options["port"] = port
        if user:
            options["username"] = user
        if settings.explicit_directory and "IdentityFile" not in _read(settings.config):
            options["client_keys"] = _default_keys(settings.directory)
        try:
            connection = await within(asyncssh.connect(host, **options),
                                      settings.connect_timeout + 1, settings.prompter)
        except asyncssh.HostKeyNotVerifiable:
            where = _where(known, host, port)
            if known.had_keys:
                raise TransportError(
                    f"host key for {where} has changed (it differs from the key in "
                    f"{settings.known_hosts}); this can mean someone is intercepting the "
                    f"connection. If the host was really re-keyed, remove the old key "
                    f"(ssh-keygen -R '{where}' -f {settings.known_hosts}) and connect again"
                ) from None
            if settings.prompter is not None and client.offered_key is not None and not retried:
                answer = await _ask_to_trust(settings.prompter, where, client.offered_key,
                                             settings.known_hosts)
                if answer == "yes":
                    retried = True
                    continue
                if answer is not None:  # someone answered, and not "yes"
                    raise TransportError(
                        f"host key for {where} ({client.offered_key.get_fingerprint()}) was not "
                        f"accepted") from None
            fingerprint = (f" ({client.offered_key.get_fingerprint()})"
                           if client.offered_key is not None else "")
            raise TransportError(
                f"host key for {where} is not known{fingerprint} (add it to known_hosts "
                f"{settings.known_hosts}, e.g. by connecting once with ssh, and try again)"
            ) from None
        except asyncssh.PermissionDenied as error:
            hint = ("the password was not accepted" if client.passwords else
                    "is the key in the ssh-agent or in the ssh config?")
            raise TransportError(f"unable to authenticate to {name}: {error.reason or error}"
                                 f" ({hint})") from None
        except (asyncio.TimeoutError, TimeoutError):
            raise TransportError(f"unable to connect to {_target(known, settings, host, user, port)}: no answer "
                                 f"within {settings.connect_timeout:g} s") from None
        except (OSError, asyncssh.Error) as error:
            raise TransportError(f"unable to connect to {_target(known, settings, host, user, port)}: "
                                 f"{connect_failure_reason(error)}") from None
        log.debug("ssh connected", remote=name, cipher=connection.get_extra_info("send_cipher"))
        return connection


_ERRNO_IN_TEXT = re.compile(r"\[Errno (\d+)\]")


def connect_failure_reason(error: BaseException) -> str:
    """The reason a connect failed, as one short lower-case phrase (pure).

    An ``OSError`` reads as its errno's ``os.strerror`` ("connection refused", "network is
    unreachable"), not asyncio's "Connect call failed ('127.0.0.1', 22)"; when asyncio tried
    several addresses ("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."), the distinct
    errnos found in the text are named in order. Name lookup errors keep their own text; an
    asyncssh error gives its reason."""
    if isinstance(error, OSError) and not isinstance(error, socket.gaierror):
        numbers = [error.errno] if isinstance(error.errno, int) and error.errno > 0 else \
            [int(n) for n in _ERRNO_IN_TEXT.findall(str(error))]
        reasons = list(dict.fromkeys(_lower_first(os.strerror(n)) for n in numbers))
        text = "; ".join(reasons) if reasons else (error.strerror or str(error))
    elif isinstance(error, OSError):
        text = error.strerror or str(error)
    else:
        text = getattr(error, "reason", "") or str(error)
    return _lower_first(" ".join(str(text).split()) or type(error).__name__)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _default_keys(directory: str) -> list[str]:
    names = ("id_ed25519", "id_ecdsa", "id_rsa")
    return [os.path.join(directory, n) for n in names if os.path.isfile(os.path.join(directory, n))]


def _where(known: _KnownHosts, host: str, port: int) -> str:
    """The known_hosts name of the host that was checked (``[host]:port`` off port 22)."""
    if known.asked is not None:
        host, _addr, port = known.asked
    port = port or 22
    return f"[{host}]:{port}" if port != 22 else host


def _target(known: _KnownHosts, settings: _Settings, host: str, user: str, port: int) -> str:
    if known.asked is not None:
        host, _addr, port = known.asked
        return f"{host}:{port or 22}"
    try:
        host, port = resolve(settings.config, host, user, port)
    except Exception:  # noqa: BLE001 - only for the message
        pass
    return f"{host}:{port or 22}"


def key_type_name(algorithm: str) -> str:
    """The key type as OpenSSH names it in its host key question (pure):
    "ssh-ed25519" -> "ED25519", "ecdsa-sha2-nistp256" -> "ECDSA", "ssh-rsa" -> "RSA"."""
    name = algorithm.lower()
    for marker, shown in (("ed25519", "ED25519"), ("ed448", "ED448"), ("ecdsa", "ECDSA"),
                          ("rsa", "RSA"), ("dss", "DSA")):
        if marker in name:
            return shown
    return algorithm


async def _ask_to_trust(prompter: Prompter, where: str, key,
                        known_hosts_file: str) -> Optional[str]:
    """Ask whether to trust ``key``; "yes" (the key is then appended to known_hosts), another
    answer ("no"), or None when nobody could answer."""
    question = (f"The authenticity of host '{where}' can't be established.\n"
                f"{key_type_name(key.get_algorithm())} key fingerprint is "
                f"{key.get_fingerprint()}.\n"
                "Are you sure you want to continue connecting (yes/no)? ")
    answer = await prompter("host-key", question, True)
    if answer is None:
        return None
    if answer.strip().lower() != "yes":
        return "no"
    os.makedirs(os.path.dirname(known_hosts_file), mode=0o700, exist_ok=True)
    line = f"{where} {key.export_public_key('openssh').decode().strip()}\n"
    with open(known_hosts_file, "a") as handle:
        handle.write(line)
    return "yes"
