"""Real servers for the remote tests: a private sshd, a private dockerd and a bare-python image.

Everything is started by the test suite itself on a bare machine (see
``shared/test-environment.md``); when something cannot start, the helper raises
``InfraError`` with the reason (tests fail loudly, they never skip).

- ``ensure_packages``: installs missing Debian packages with apt (the exact line is
  ``APT_LINE``; ``tests/run`` can run it up front so this fallback costs nothing).
- ``PrivateSshd``: ``/usr/sbin/sshd -D`` on a free 127.0.0.1 port with a generated host key,
  a non-root login user with a generated key, and a client-side ssh directory (``config`` with
  the ``Host`` alias, ``known_hosts``, the identity) for the transport.
- ``PrivateDockerd``: ``/usr/sbin/dockerd`` with its own socket, data root, exec root and
  pidfile under a temporary directory, no bridge and no iptables changes; containers run with
  ``--network none`` or ``--network host``. Stopped by pid, after the containers it started.
- ``bare_python_image``: a Debian bookworm minbase root with python3 (and openssh-server for
  an sshd inside a container) made with debootstrap; the root's tarball is cached under
  ``/var/cache/mutagen-actors-tests`` so later runs only ``docker import`` it (~2 s).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

APT_PACKAGES = ("openssh-server", "docker.io", "debootstrap")
APT_LINE = "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y " + " ".join(APT_PACKAGES)
CACHE_DIRECTORY = "/var/cache/mutagen-actors-tests"
IMAGE_TAG = "mutagen-actors-test/bookworm-python3:1"
IMAGE_TARBALL = "bookworm-minbase-python3-sshd-1.tar"
LOGIN_USER = "mutagen-test"


def own_login_user() -> str:
    """The login user of this process's servers: one per test or benchmark process, so two runs
    on one machine never share a home (an agent install or a harness cleanup of one run used to
    delete the other's agents mid-test)."""
    return f"{LOGIN_USER}-{os.getpid()}"


class InfraError(RuntimeError):
    """A test server could not be provided; the text says why."""


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    """Poll ``predicate`` until it returns a true value; raise ``InfraError`` past ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise InfraError(f"{what} did not happen within {timeout:g} s")
        time.sleep(interval)


def run(argv, *, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise InfraError(f"{argv[0]} did not finish within {timeout:g} s") from None
    if check and result.returncode != 0:
        raise InfraError(f"{' '.join(map(str, argv))} failed with status {result.returncode}: "
                         f"{result.stderr.decode(errors='replace').strip()[-2000:]}")
    return result


def ensure_packages(binaries: dict[str, str]) -> None:
    """Install the Debian package of each missing binary (``{path: package}``) with apt."""
    missing = sorted({package for path, package in binaries.items() if not os.path.exists(path)})
    if not missing:
        return
    with _lock("apt"):
        missing = sorted({p for path, p in binaries.items() if not os.path.exists(path)})
        if not missing:
            return
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", *missing]
        if run(install, check=False, env=env, timeout=600).returncode != 0:
            run(["apt-get", "update", "-q"], env=env, timeout=600)
            run(install, env=env, timeout=600)
    still = [path for path in binaries if not os.path.exists(path)]
    if still:
        raise InfraError(f"installed {missing} but {still} still missing")


class _lock:
    """An fcntl lock under the cache directory (parallel runs on one machine)."""

    def __init__(self, name: str):
        os.makedirs(CACHE_DIRECTORY, exist_ok=True)
        self.path = os.path.join(CACHE_DIRECTORY, f".{name}.lock")

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; by pid only."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


# ------------------------------------------------------------------------------------------ ssh


def generate_key(path: str, comment: str = "mutagen-actors-test") -> str:
    """An ed25519 key pair at ``path``/``path.pub``; returns the public key line."""
    for suffix in ("", ".pub"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    with open(path + ".pub") as handle:
        return handle.read().strip()


def ensure_login_user(name: str = LOGIN_USER) -> tuple[pwd.struct_passwd, bool]:
    """A non-root user that can log in with a key (password field ``*``, not locked), and
    whether it was created here."""
    created = False
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        run(["useradd", "-m", "-s", "/bin/sh", name])
        entry, created = pwd.getpwnam(name), True
    run(["usermod", "-p", "*", name])
    return entry, created


def remove_login_user(name: str) -> None:
    """Delete ``name`` and its home (best effort: processes it still runs are not waited for)."""
    subprocess.run(["userdel", "-f", "-r", name], stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=30, check=False)


@dataclass
class SshClientFiles:
    """A client-side ssh directory: ``config`` (alias ``alias``), ``known_hosts``, identity."""

    directory: str
    alias: str
    identity: str

    @property
    def config(self) -> str:
        return os.path.join(self.directory, "config")

    @property
    def known_hosts(self) -> str:
        return os.path.join(self.directory, "known_hosts")


@dataclass
class PrivateSshd:
    """A private OpenSSH server on 127.0.0.1 (see the module docstring)."""

    root: str
    port: int = 0
    user: str = field(default_factory=own_login_user)
    process: subprocess.Popen | None = None
    created_user: bool = False
    host_public_key: str = ""
    client: SshClientFiles | None = None
    extra_config: list[str] = field(default_factory=list)

    def start(self, timeout: float = 10) -> "PrivateSshd":
        ensure_packages({"/usr/sbin/sshd": "openssh-server", "/usr/bin/ssh-keygen": "openssh-client"})
        entry, self.created_user = ensure_login_user(self.user)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        os.chmod(self.root, 0o755)  # the login user reads authorized_keys here
        self.port = self.port or free_port()
        host_key = os.path.join(self.root, "host_ed25519")
        self.host_public_key = generate_key(host_key, "test-host")
        client_dir = os.path.join(self.root, "client")
        os.makedirs(client_dir, mode=0o700)
        identity = os.path.join(client_dir, "id_ed25519")
        user_key = generate_key(identity)
        keys = os.path.join(self.root, "authorized_keys")
        with open(keys, "w") as handle:
            handle.write(user_key + "\n")
        os.chmod(keys, 0o644)
        config = os.path.join(self.root, "sshd_config")
        lines = [
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {self.root}/sshd.pid", f"AuthorizedKeysFile {keys}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no", "MaxSessions 50", "MaxStartups 50:30:100",
            "Subsystem sftp internal-sftp", "LogLevel VERBOSE", *self.extra_config,
        ]
        with open(config, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        self.log_path = os.path.join(self.root, "sshd.log")
        self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", config, "-E", self.log_path],
                                        stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: port_open(self.port) or self.process.poll() is not None, timeout,
                     "sshd listening")
        except InfraError:
            self.stop()
            raise
        if self.process.poll() is not None:
            raise InfraError(f"sshd exited with {self.process.returncode}: {self.log()}")
        self.client = self.client_files("client", identity)
        self.home = entry.pw_dir
        return self

    def client_files(self, name: str, identity: str | None = None, *,
                     known_hosts: str | None = None) -> SshClientFiles:
        """A client ssh directory named ``name`` with alias ``testhost``; ``known_hosts`` is its
        content (default: this server's key, for the alias and for ``[127.0.0.1]:port``)."""
        directory = os.path.join(self.root, name)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        identity = identity or self.client.identity
        with open(os.path.join(directory, "config"), "w") as handle:
            handle.write(f"Host testhost\n  HostName 127.0.0.1\n  Port {self.port}\n"
                         f"  User {self.user}\n  IdentityFile {identity}\n")
        if known_hosts is None:
            key = " ".join(self.host_public_key.split()[:2])
            known_hosts = f"[127.0.0.1]:{self.port} {key}\n"
        with open(os.path.join(directory, "known_hosts"), "w") as handle:
            handle.write(known_hosts)
        return SshClientFiles(directory, "testhost", identity)

    def log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as handle:
                return handle.read()[-4000:]
        except OSError:
            return ""

    def session_processes(self) -> list[int]:
        """Pids of the per-connection sshd children of this server."""
        return children_of(self.process.pid)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self.created_user:
            remove_login_user(self.user)
            self.created_user = False


def children_of(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(name))
    return found


# --------------------------------------------------------------------------------------- docker


@dataclass
class PrivateDockerd:
    """A private Docker engine (see the module docstring); ``environment`` points the docker CLI
    at it (``DOCKER_HOST``), the way a user's captured environment does."""

    root: str
    process: subprocess.Popen | None = None
    containers: list[str] = field(default_factory=list)

    @property
    def environment(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{self.root}/docker.sock"}

    def docker(self, *args, timeout: float = 120, check: bool = True, input: bytes | None = None):
        env = dict(os.environ, **self.environment)
        env.pop("DOCKER_CONTEXT", None)
        return run([docker_binary(), *args], timeout=timeout, check=check, env=env, input=input)

    def start(self, timeout: float = 30) -> "PrivateDockerd":
        ensure_packages({"/usr/sbin/dockerd": "docker.io"})
        log = open(os.path.join(self.root, "dockerd.log"), "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["/usr/sbin/dockerd", "--host", self.environment["DOCKER_HOST"],
             "--data-root", f"{self.root}/data", "--exec-root", f"{self.root}/exec",
             "--pidfile", f"{self.root}/docker.pid", "--bridge", "none", "--iptables=false",
             "--ip6tables=false"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def ready():
            if self.process.poll() is not None:
                return True
            return self.docker("version", check=False, timeout=10).returncode == 0

        try:
            wait_for(ready, timeout, "dockerd answering", interval=0.1)
        except InfraError:
            self.stop()
            raise InfraError(f"dockerd did not come up within {timeout:g} s: {self.log()}") from None
        if self.process.poll() is not None:
            raise InfraError(f"dockerd exited with {self.process.returncode}: {self.log()}")
        return self

    def log(self) -> str:
        try:
            with open(os.path.join(self.root, "dockerd.log"), errors="replace") as handle:
                return handle.read()[-4000:]
        except OSError:
            return ""

    def run_container(self, image: str, *args: str, network: str = "none",
                      command: tuple[str, ...] = ()) -> str:
        name = f"mutagen-test-{os.getpid()}-{len(self.containers)}"
        self.docker("run", "-d", "--name", name, "--network", network, *args, image, *command)
        self.containers.append(name)
        return name

    def stop(self) -> None:
        if self.process is None:
            return
        if self.containers:
            self.docker("rm", "-f", *self.containers, check=False, timeout=60)
        stop_process(self.process, timeout=20)
        unmount_below(self.root)


def unmount_below(root: str) -> None:
    """Unmount what dockerd left mounted under ``root`` (its default network namespace)."""
    with open("/proc/self/mounts") as handle:
        points = [line.split()[1] for line in handle]
    for point in sorted((p for p in points if p.startswith(root.rstrip("/") + "/")), reverse=True):
        run(["umount", "-l", point], check=False, timeout=30)


def docker_binary() -> str:
    return shutil.which("docker") or "/usr/bin/docker"


def debian_mirror() -> str:
    """The Debian mirror apt already uses here (first ``URIs:``/``deb`` line naming debian)."""
    candidates = []
    for directory in ("/etc/apt/sources.list.d", "/etc/apt"):
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if name.endswith((".sources", ".list")):
                candidates.append(os.path.join(directory, name))
    for path in candidates:
        with open(path, errors="replace") as handle:
            for line in handle:
                words = line.split()
                if not words or words[0].startswith("#"):
                    continue
                uris = words[1:] if words[0] == "URIs:" else words[1:2] if words[0] == "deb" else []
                for uri in uris:
                    if uri.rstrip("/").endswith("/debian"):
                        return uri
    raise InfraError(f"no Debian mirror found in {candidates}")


def bare_python_image(dockerd: PrivateDockerd) -> str:
    """Import (building and caching first if needed) the bare-python test image; returns its tag."""
    tarball = os.path.join(CACHE_DIRECTORY, IMAGE_TARBALL)
    with _lock("image"):
        if not os.path.exists(tarball):
            ensure_packages({"/usr/sbin/debootstrap": "debootstrap"})
            build = tempfile.mkdtemp(prefix="rootfs-", dir=CACHE_DIRECTORY)
            try:
                run(["debootstrap", "--variant=minbase", "--include=python3,openssh-server",
                     "bookworm", build, debian_mirror()], timeout=600)
                shutil.rmtree(os.path.join(build, "var/cache/apt/archives"), ignore_errors=True)
                run(["tar", "-C", build, "-cf", tarball + ".tmp", "."], timeout=300)
                os.rename(tarball + ".tmp", tarball)
            finally:
                shutil.rmtree(build, ignore_errors=True)
    with open(tarball, "rb") as handle:
        env = dict(os.environ, **dockerd.environment)
        result = subprocess.run([docker_binary(), "import", "-c", 'CMD ["sleep","infinity"]',
                                 "-", IMAGE_TAG], stdin=handle, capture_output=True, env=env,
                                timeout=300)
    if result.returncode != 0:
        raise InfraError(f"docker import failed: {result.stderr.decode(errors='replace')}")
    return IMAGE_TAG


@dataclass
class ContainerSshd:
    """An sshd inside a container of the bare-python image (``--network host``, 127.0.0.1 only):
    a second SSH remote with its own filesystem and its own bare python3; login as root with a
    generated key. ``client`` is the client ssh directory (alias ``containerhost``)."""

    container: str
    port: int
    client: SshClientFiles


def start_container_sshd(dockerd: PrivateDockerd, image: str, root: str,
                         timeout: float = 15) -> ContainerSshd:
    os.makedirs(root, mode=0o700, exist_ok=True)
    port = free_port()
    host_key = os.path.join(root, "host_ed25519")
    host_public = generate_key(host_key, "container-host")
    identity = os.path.join(root, "id_ed25519")
    user_key = generate_key(identity)
    config = os.path.join(root, "sshd_config")
    with open(config, "w") as handle:
        handle.write("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", "HostKey /etc/ssh/test_host_ed25519",
            "PidFile /run/test-sshd.pid", "AuthorizedKeysFile /etc/ssh/test_authorized_keys",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
            "PermitRootLogin prohibit-password", "StrictModes no", "MaxSessions 50"]) + "\n")
    keys = os.path.join(root, "authorized_keys")
    with open(keys, "w") as handle:
        handle.write(user_key + "\n")
    name = dockerd.run_container(image, network="host")
    dockerd.docker("cp", host_key, f"{name}:/etc/ssh/test_host_ed25519")
    dockerd.docker("cp", keys, f"{name}:/etc/ssh/test_authorized_keys")
    dockerd.docker("cp", config, f"{name}:/etc/ssh/test_sshd_config")
    dockerd.docker("exec", name, "sh", "-c", "mkdir -p /run/sshd && chmod 600 /etc/ssh/test_host_ed25519")
    dockerd.docker("exec", "-d", name, "/usr/sbin/sshd", "-D", "-f", "/etc/ssh/test_sshd_config",
                   "-E", "/var/log/test-sshd.log")
    wait_for(lambda: port_open(port), timeout, "sshd in the container listening")
    client = os.path.join(root, "client")
    os.makedirs(client, mode=0o700, exist_ok=True)
    with open(os.path.join(client, "config"), "w") as handle:
        handle.write(f"Host containerhost\n  HostName 127.0.0.1\n  Port {port}\n  User root\n"
                     f"  IdentityFile {identity}\n")
    with open(os.path.join(client, "known_hosts"), "w") as handle:
        handle.write(f"[127.0.0.1]:{port} {' '.join(host_public.split()[:2])}\n")
    return ContainerSshd(name, port, SshClientFiles(client, "containerhost", identity))
