"""Fixtures for the forwarding session tests: a real daemon with a private data directory and a
private HOME (the foundation's ``Daemon`` helper), driven through the real CLI; teardown kills
every process of that data directory by pid. Plus small blocking-socket clients."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import tempfile

import pytest

from conftest import append_file, keep_log_on_failure
from foundation.conftest import Daemon, processes_of, wait_until


class ForwardDaemon(Daemon):
    home: str = ""
    root: str = ""

    @property
    def env(self) -> dict:
        return {**super().env, "HOME": self.home, "MUTAGEN_ACTORS_LOG_LEVEL": "info"}

    def forward(self, *args: str, timeout: float = 150.0, check: bool = True):
        # longer than the CLI's own deadlines (120 s): a test sees the CLI's answer
        return self.cli("forward", *args, timeout=timeout, check=check)

    def sessions(self, *args: str) -> list[dict]:
        return json.loads(self.forward("list", "--json", *args).stdout)

    def session(self, specification: str) -> dict:  # type: ignore[override]
        [found] = self.sessions(specification)
        return found

    def wait_session(self, specification: str, predicate, timeout: float = 30.0,
                     what: str = "session state") -> dict:
        def check():
            state = self.session(specification)
            return state if predicate(state) else None

        return wait_until(check, timeout, interval=0.05, what=what)

    def create(self, *args: str) -> str:
        result = self.forward("create", *args)
        assert result.stdout.startswith("Created session fwrd_"), result.stdout
        return result.stdout.strip().removeprefix("Created session ")

    def actor_pids(self, session_id: str) -> dict[str, int]:
        session = next(s for s in self.status()["sessions"] if s["id"] == session_id)
        return {actor["id"]: actor["pid"] for actor in session["actors"]}

    def records(self) -> list[str]:
        directory = os.path.join(self.data_dir, "sessions")
        return sorted(n for n in os.listdir(directory) if n.endswith(".json"))


@pytest.fixture
def forward_daemon(request):
    root = tempfile.mkdtemp(prefix="ma-", dir="/tmp")  # short: unix socket paths
    handle = ForwardDaemon(os.path.join(root, "data"))
    handle.root = root
    handle.home = os.path.join(root, "home")
    os.mkdir(handle.home)
    yield handle
    for pid in processes_of(handle.data_dir):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    wait_until(lambda: not processes_of(handle.data_dir), 10, what="test processes to die")
    kept = keep_log_on_failure(request.node, handle.log_path)
    if kept:
        append_file(os.path.join(handle.data_dir, "daemon", "stacks.txt"), kept, "thread stacks")
    shutil.rmtree(root, ignore_errors=True)


def free_port() -> int:
    """A port of 127.0.0.1 free right now, below the kernel's ephemeral range (so the outgoing
    connections of other tests on this machine cannot take it before the forwarder binds)."""
    low = 20000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as stream:
            ephemeral = int(stream.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    high = max(low + 1000, min(ephemeral, 32768))
    for _ in range(200):
        port = random.randrange(low, high)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port found")


def connect(endpoint: str, timeout: float = 5.0) -> socket.socket:
    if endpoint.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(endpoint[5:])
        return sock
    host, _, port = endpoint.partition(":")[2].rpartition(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, received = [], 0
    while received < size:
        data = sock.recv(min(1 << 20, size - received))
        if not data:
            break
        chunks.append(data)
        received += len(data)
    return b"".join(chunks)


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(1 << 20)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def echo_once(endpoint: str, payload: bytes, timeout: float = 5.0) -> bool:
    """One connection through a forward to an echo server: send, half-close, read it back."""
    try:
        with connect(endpoint, timeout) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            return recv_all(sock) == payload
    except OSError:
        return False


def http_get(endpoint: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """A plain HTTP/1.0 GET over ``tcp:`` or ``unix:``: (status code, body)."""
    with connect(endpoint, timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: forwarded\r\n\r\n".encode())
        response = recv_all(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def listening(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
