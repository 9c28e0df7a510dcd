"""Parsing and validation of forwarding endpoints and unix-socket options (pure, tables)."""

from __future__ import annotations

import pytest

from mutagen_actors.actors.forward.endpoints import (
    Endpoint, ForwardingError, OverwriteMode, SocketOptions, parse_endpoint,
    parse_permission_mode, socket_options)


@pytest.mark.parametrize("text,expected", [
    ("tcp:localhost:8080", Endpoint("tcp", "localhost", 8080)),
    ("tcp::3000", Endpoint("tcp", "", 3000)),
    ("tcp:127.0.0.1:0", Endpoint("tcp", "127.0.0.1", 0)),
    ("tcp4:127.0.0.1:65535", Endpoint("tcp4", "127.0.0.1", 65535)),
    ("tcp6:[::1]:80", Endpoint("tcp6", "::1", 80)),
    ("tcp:[::1]:80", Endpoint("tcp", "::1", 80)),
    ("tcp6:localhost:80", Endpoint("tcp6", "localhost", 80)),
    ("unix:/tmp/app.sock", Endpoint("unix", path="/tmp/app.sock")),
    ("unix:/tmp/../tmp//x/./app.sock", Endpoint("unix", path="/tmp/x/app.sock")),
    ("unix:relative/app.sock", Endpoint("unix", path="/work/relative/app.sock")),
])
def test_valid_endpoints(text, expected):
    assert parse_endpoint(text, cwd="/work") == expected


def test_home_is_expanded_in_unix_paths(monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    assert parse_endpoint("unix:~/s.sock").path == "/home/someone/s.sock"


@pytest.mark.parametrize("endpoint,text", [
    (Endpoint("tcp", "localhost", 8080), "tcp:localhost:8080"),
    (Endpoint("tcp6", "::1", 80), "tcp6:[::1]:80"),
    (Endpoint("unix", path="/a/b"), "unix:/a/b"),
])
def test_endpoints_print_as_they_parse(endpoint, text):
    assert str(endpoint) == text
    assert parse_endpoint(text) == endpoint


@pytest.mark.parametrize("text,listening,message", [
    ("", True, "empty forwarding endpoint"),
    ("localhost:8080", True, "expected <protocol>:<address> with protocol one of tcp, tcp4"),
    ("udp:localhost:53", True, "protocol one of"),
    ("npipe:\\\\.\\pipe\\x", True, "protocol one of"),
    ("tcp:8080", True, "expected tcp:<host>:<port>"),
    ("tcp:localhost:", True, "port '' is not a number"),
    ("tcp:localhost:http", True, "port 'http' is not a number"),
    ("tcp:localhost:-1", True, "port '-1' is not a number"),
    ("tcp:localhost:65536", True, "port 65536 is out of range (0-65535)"),
    ("tcp:localhost:99999999", True, "out of range"),
    ("tcp:localhost:٣٠٠٠", True, "is not a number"),
    ("tcp6:::1:80", True, "IPv6 addresses must be written in brackets"),
    ("tcp4:[::1]:80", True, "tcp4 takes an IPv4 address or a host name"),
    ("tcp6:[localhost]:80", True, "brackets are only for IPv6"),
    ("tcp4:[127.0.0.1]:80", True, "brackets are only for IPv6"),
    ("tcp:[]:80", True, "brackets are only for IPv6"),
    ("tcp:bad host:80", True, "is not a host name or address"),
    ("tcp:user@host:80", True, "is not a host name or address"),
    ("tcp::8080", False, "a destination needs a host"),
    ("tcp:localhost:0", False, "a destination needs a port between 1 and 65535"),
    ("unix:", True, "the unix socket path is empty"),
    ("unix:/tmp/a\0b", True, "NUL byte"),
    ("unix:/" + "x" * 107, True, "unix socket path too long in 'unix:/xxx"),
])
def test_bad_endpoints_get_one_clear_line(text, listening, message):
    with pytest.raises(ForwardingError) as error:
        parse_endpoint(text, listening=listening)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("length,ok", [(107, True), (108, False)])
def test_unix_path_limit_is_107_bytes(length, ok):
    path = "/" + "p" * (length - 1)
    if ok:
        assert parse_endpoint(f"unix:{path}").path == path
    else:
        with pytest.raises(ForwardingError, match="108 bytes, at most 107"):
            parse_endpoint(f"unix:{path}")


def test_unix_path_limit_counts_bytes_not_characters():
    path = "/" + "é" * 60  # 121 bytes in UTF-8, 61 characters
    with pytest.raises(ForwardingError, match="121 bytes"):
        parse_endpoint(f"unix:{path}")


@pytest.mark.parametrize("text,expected", [
    ("0600", 0o600), ("600", 0o600), ("0o644", 0o644), ("0777", 0o777), ("0", 0), (0o640, 0o640),
])
def test_permission_modes(text, expected):
    assert parse_permission_mode(text) == expected


@pytest.mark.parametrize("text", ["", "0800", "rw-------", "01777", "4755", 0o4755, "0x600"])
def test_bad_permission_modes(text):
    with pytest.raises(ForwardingError, match="invalid socket permission mode"):
        parse_permission_mode(text)


def test_socket_options_from_command_line_text():
    assert socket_options() == SocketOptions(OverwriteMode.LEAVE, "", "", 0o600)
    assert socket_options("overwrite", "alice", "id:100", "0660") == \
        SocketOptions(OverwriteMode.OVERWRITE, "alice", "id:100", 0o660)
    with pytest.raises(ForwardingError, match="expected 'leave' or 'overwrite'"):
        socket_options("replace")
