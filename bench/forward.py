"""Local forwarding: throughput of one connection and connection set-up latency through a
tcp->tcp forward, against a direct connection to the same server.

The relay runs in its own process (like the forwarder actor); the servers (a sink that counts
what it receives and answers the count, an echo server) and the client run in this process with
blocking sockets in threads. Rows: ``direct`` (no relay), ``relay (splice)`` (the default path
between kernel sockets) and ``relay (copy loop)`` (the generic read/write path that SSH and
docker streams will use).

- throughput: ``--size`` bytes (default 1 GiB) sent through one connection, then half-close, then
  wait for the sink's byte count; best and median of ``--runs``;
- relay CPU: user + system seconds the relay process spent per GiB (what the relay costs,
  independent of how busy the machine is);
- set-up latency: connect, send 1 byte, read the echoed byte, close; p50 and p99 over
  ``--connections`` sequential connections.

    .venv/bin/python bench/forward.py [--size 1073741824] [--runs 3] [--connections 500] [--json]

With ``--ssh`` the rows are instead a forward to a private loopback sshd (``tests/remote/infra``
``PrivateSshd``; run as root): ``ssh -L`` (OpenSSH client, same cipher as ours,
aes128-gcm@openssh.com) against the forwarder's SSH dialer (direct-tcpip channels on one
asyncssh connection, relay copy loop), both reaching the same sink and echo servers through the
same sshd (``--size`` defaults to 256 MiB there). A third row, ``forwarder, stock asyncssh``,
runs the forwarder without its short SSH send paths (``actors.forward.remote.LEAN_SSH``: the
per-key AES-GCM object and the one-copy CHANNEL_DATA framing), interleaved with the others, so
what those paths buy is measured under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

BLOCK = 1 << 20


class _Server:
    def __init__(self, handle):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.endpoint = f"tcp:127.0.0.1:{self.sock.getsockname()[1]}"
        self._handle = handle
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        with conn:
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._handle(conn)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def _sink(conn):
    buffer = bytearray(BLOCK)
    total = 0
    while n := conn.recv_into(buffer):
        total += n
    conn.sendall(f"{total}\n".encode())


def _echo(conn):
    while data := conn.recv(65536):
        conn.sendall(data)


def _address(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.split(":", 1)[1].rpartition(":")
    return host, int(port)


def throughput(endpoint: str, size: int) -> float:
    payload = os.urandom(BLOCK)
    with socket.create_connection(_address(endpoint), timeout=120) as client:
        started = time.perf_counter()
        sent = 0
        while sent < size:
            chunk = payload if size - sent >= BLOCK else payload[: size - sent]
            client.sendall(chunk)
            sent += len(chunk)
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while data := client.recv(64):
            answer += data
        elapsed = time.perf_counter() - started
    if int(answer) != size:
        raise RuntimeError(f"sink received {answer!r}, expected {size}")
    return size / elapsed


def setup_latency(endpoint: str, count: int) -> list[float]:
    address = _address(endpoint)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        with socket.create_connection(address, timeout=10) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.sendall(b"x")
            if client.recv(1) != b"x":
                raise RuntimeError("echo failed")
        samples.append(time.perf_counter() - started)
    return samples


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class RelayProcess:
    """``bench/forward.py --serve-relay DEST [--copy-loop] [--ssh-directory D --ssh-host H]`` in
    a child process; the listening endpoint is the first line it prints. Stopped by its pid."""

    def __init__(self, destination: str, copy_loop: bool, ssh: tuple[str, str] | None = None,
                 stock: bool = False):
        command = [sys.executable, __file__, "--serve-relay", destination]
        if copy_loop:
            command.append("--copy-loop")
        if stock:
            command.append("--stock-asyncssh")
        if ssh is not None:
            command += ["--ssh-directory", ssh[0], "--ssh-host", ssh[1]]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                                        text=True)
        self.endpoint = ""
        while not self.endpoint.startswith("tcp:"):  # skip log lines
            line = self.process.stdout.readline()
            if not line:
                break
            self.endpoint = line.strip()
        if not self.endpoint.startswith("tcp:"):
            raise RuntimeError("relay process did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU time the relay process has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.process.stdin.close()  # the relay exits at end of stdin
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def serve_relay(destination: str, copy_loop: bool, ssh_directory: str = "",
                ssh_host: str = "", stock: bool = False) -> None:
    from mutagen_actors.actors.forward import remote as remote_module
    from mutagen_actors.actors.forward.dialers import make_dialer
    from mutagen_actors.actors.forward.endpoints import parse_endpoint
    from mutagen_actors.actors.forward.listeners import open_listener
    from mutagen_actors.actors.forward.relay import Relay
    from mutagen_actors.actors.forward.remote import connect_remote

    async def main():
        loop = asyncio.get_running_loop()
        listener = await open_listener(parse_endpoint("tcp:127.0.0.1:0"))
        remote = None
        endpoint = parse_endpoint(destination, listening=False)
        if ssh_host:
            remote_module.LEAN_SSH = not stock
            remote = await connect_remote({"protocol": "ssh", "host": ssh_host},
                                          cache_directory="", ssh_directory=ssh_directory)
            dial = remote.dialer(endpoint)
        else:
            dial = make_dialer(endpoint)
        relay = Relay(listener, dial, use_splice=not copy_loop)
        relay.start()
        print(listener.describe(), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
        await relay.close()
        if remote is not None:
            await remote.close()

    asyncio.run(main())


class SshL:
    """``ssh -N -L 127.0.0.1:P:<destination>`` to the private sshd, stopped by its pid."""

    def __init__(self, destination: str, client, port: int):
        host, dport = _address(destination)
        self.process = subprocess.Popen(
            ["ssh", "-F", client.config, "-o", f"UserKnownHostsFile={client.known_hosts}",
             "-o", "BatchMode=yes", "-c", "aes128-gcm@openssh.com", "-N",
             "-L", f"127.0.0.1:{port}:{host}:{dport}", client.alias],
            stdin=subprocess.DEVNULL)
        self.endpoint = f"tcp:127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("ssh -L did not start listening") from None
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU time the ssh client has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_ssh(size: int, runs: int, connections: int) -> list[dict]:
    import shutil
    import tempfile

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), "tests"))
    from remote.infra import PrivateSshd, free_port

    root = tempfile.mkdtemp(prefix="bench-sshd-", dir="/tmp")
    sshd = PrivateSshd(root).start()
    sink, echo = _Server(_sink), _Server(_echo)
    rows = []
    names = ("ssh -L", "forwarder over ssh", "forwarder, stock asyncssh")
    forwards: dict[str, list] = {}
    try:
        ssh = (sshd.client.directory, sshd.client.alias)
        forwards["ssh -L"] = [SshL(sink.endpoint, sshd.client, free_port()),
                              SshL(echo.endpoint, sshd.client, free_port())]
        forwards["forwarder over ssh"] = [RelayProcess(sink.endpoint, True, ssh),
                                          RelayProcess(echo.endpoint, True, ssh)]
        forwards["forwarder, stock asyncssh"] = [
            RelayProcess(sink.endpoint, True, ssh, stock=True),
            RelayProcess(echo.endpoint, True, ssh, stock=True)]
        rates: dict[str, list] = {name: [] for name in names}
        latencies: dict[str, list] = {name: [] for name in names}
        cpu: dict[str, float] = {name: 0.0 for name in names}
        for _ in range(runs):  # interleaved: a busy machine's drift hits both alike
            for name in names:
                before = forwards[name][0].cpu_seconds()
                rates[name].append(throughput(forwards[name][0].endpoint, size))
                cpu[name] += forwards[name][0].cpu_seconds() - before
            for name in names:
                latencies[name] += setup_latency(forwards[name][1].endpoint,
                                                 max(1, connections // runs))
        for name in names:
            rows.append({
                "path": name,
                "throughput_best_gbps": max(rates[name]) / 1e9,
                "throughput_median_gbps": statistics.median(rates[name]) / 1e9,
                "relay_cpu_s_per_gib": cpu[name] / (size * runs / 2**30),
                "setup_p50_us": _percentile(latencies[name], 0.50) * 1e6,
                "setup_p99_us": _percentile(latencies[name], 0.99) * 1e6,
            })
    finally:
        for pair in forwards.values():
            for forward in pair:
                forward.stop()
        sink.close()
        echo.close()
        sshd.stop()
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0]
    for row in rows:
        row["throughput_vs_direct"] = row["throughput_median_gbps"] / \
            base["throughput_median_gbps"]
    return rows


def run(size: int, runs: int, connections: int) -> list[dict]:
    sink, echo = _Server(_sink), _Server(_echo)
    rows = []
    try:
        for name, copy_loop in (("direct", None), ("relay (splice)", False),
                                ("relay (copy loop)", True)):
            relays = []
            if copy_loop is None:
                sink_endpoint, echo_endpoint = sink.endpoint, echo.endpoint
            else:
                relays = [RelayProcess(sink.endpoint, copy_loop),
                          RelayProcess(echo.endpoint, copy_loop)]
                sink_endpoint, echo_endpoint = relays[0].endpoint, relays[1].endpoint
            try:
                cpu_before = relays[0].cpu_seconds() if relays else 0.0
                rates = [throughput(sink_endpoint, size) for _ in range(runs)]
                cpu = (relays[0].cpu_seconds() - cpu_before) if relays else 0.0
                latencies = setup_latency(echo_endpoint, connections)
            finally:
                for relay in relays:
                    relay.stop()
            rows.append({
                "path": name,
                "throughput_best_gbps": max(rates) / 1e9,
                "throughput_median_gbps": statistics.median(rates) / 1e9,
                "relay_cpu_s_per_gib": cpu / (size * runs / 2**30),
                "setup_p50_us": _percentile(latencies, 0.50) * 1e6,
                "setup_p99_us": _percentile(latencies, 0.99) * 1e6,
            })
    finally:
        sink.close()
        echo.close()
    direct = rows[0]
    for row in rows:
        row["throughput_vs_direct"] = row["throughput_median_gbps"] / \
            direct["throughput_median_gbps"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1 << 30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-relay", metavar="DESTINATION", help=argparse.SUPPRESS)
    parser.add_argument("--copy-loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ssh", action="store_true",
                        help="compare with ssh -L on a private loopback sshd")
    parser.add_argument("--ssh-directory", default="", help=argparse.SUPPRESS)
    parser.add_argument("--ssh-host", default="", help=argparse.SUPPRESS)
    parser.add_argument("--stock-asyncssh", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_relay:
        serve_relay(args.serve_relay, args.copy_loop, args.ssh_directory, args.ssh_host,
                    args.stock_asyncssh)
        return
    if args.ssh:
        if args.size == 1 << 30:
            args.size = 256 << 20
        rows = run_ssh(args.size, args.runs, args.connections)
    else:
        rows = run(args.size, args.runs, args.connections)
    if args.json:
        print(json.dumps({"size": args.size, "runs": args.runs,
                          "connections": args.connections, "cores": os.cpu_count(),
                          "rows": rows}, indent=2))
        return
    print(f"one connection, {args.size / 2**30:g} GiB x {args.runs} runs; set-up latency over "
          f"{args.connections} connections (connect + 1-byte echo + close); "
          f"{os.cpu_count()} cores")
    print(f"{'path':<26} {'best GB/s':>10} {'median GB/s':>12} {'vs first':>10} "
          f"{'fwd CPU s/GiB':>16} {'setup p50 us':>13} {'setup p99 us':>13}")
    for row in rows:
        print(f"{row['path']:<26} {row['throughput_best_gbps']:>10.2f} "
              f"{row['throughput_median_gbps']:>12.2f} {row['throughput_vs_direct']:>9.2f}x "
              f"{row['relay_cpu_s_per_gib']:>16.2f} {row['setup_p50_us']:>13.0f} {row['setup_p99_us']:>13.0f}")


if __name__ == "__main__":
    main()
