"""Endpoint URL parsing and formatting (reference §2)."""

from __future__ import annotations

import os
import pwd

import pytest

from mutagen_actors.supervisor.urls import (
    DOCKER,
    LOCAL,
    SSH,
    Url,
    format_url,
    parse_forward_url,
    parse_forwarding_endpoint,
    parse_url,
)

HOME = os.path.expanduser("~")
CWD = os.getcwd()

# (raw, protocol, user, host, port, path)
SYNC = [
    ("host:~/project", SSH, "", "host", 0, "~/project"),
    ("me@host:2222:/var/www", SSH, "me", "host", 2222, "/var/www"),
    ("host:relative/dir", SSH, "", "host", 0, "relative/dir"),
    ("host:/abs", SSH, "", "host", 0, "/abs"),
    ("host:22", SSH, "", "host", 0, "22"),  # digits without a ':' after them are a path
    ("host:65535:/x", SSH, "", "host", 65535, "/x"),
    ("user@example.com:1:x", SSH, "user", "example.com", 1, "x"),
    ("a@b@host:/x", SSH, "a", "b@host", 0, "/x"),  # the first '@' ends the user
    ("host:/path:with:colons", SSH, "", "host", 0, "/path:with:colons"),
    ("host:x@y", SSH, "", "host", 0, "x@y"),
    ("docker://container/var/www", DOCKER, "", "container", 0, "/var/www"),
    ("docker://me@container/app", DOCKER, "me", "container", 0, "/app"),
    ("DOCKER://Container/x", DOCKER, "", "Container", 0, "/x"),
    ("docker://c/~/x", DOCKER, "", "c", 0, "~/x"),
    ("docker://c/~", DOCKER, "", "c", 0, "~"),
    ("docker://c/C:/x", DOCKER, "", "c", 0, "C:/x"),
    ("docker://c/", DOCKER, "", "c", 0, "/"),
    ("/abs/path", LOCAL, "", "", 0, "/abs/path"),
    ("/abs//path/./x/../y", LOCAL, "", "", 0, "/abs/path/y"),
    ("relative", LOCAL, "", "", 0, os.path.join(CWD, "relative")),
    ("./a:b", LOCAL, "", "", 0, os.path.join(CWD, "a:b")),  # '/' before ':' means local
    ("~", LOCAL, "", "", 0, HOME),
    ("~/code", LOCAL, "", "", 0, os.path.join(HOME, "code")),
    (f"~{pwd.getpwuid(os.getuid()).pw_name}/x", LOCAL, "", "", 0, os.path.join(pwd.getpwuid(os.getuid()).pw_dir, "x")),
]


@pytest.mark.parametrize("raw, protocol, user, host, port, path", SYNC)
def test_parse_sync_url(raw, protocol, user, host, port, path):
    url = parse_url(raw, "alpha", environment={})
    assert (url.protocol, url.user, url.host, url.port, url.path) == (protocol, user, host, port, path)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "empty URL"),
        ("@host:/x", "empty username"),
        (":/x", "empty hostname"),
        ("host:", "empty path"),
        ("me@host:22:", "empty path"),
        ("host:70000:/x", "port 70000 out of range"),
        ("host:0:/x", "port 0 out of range"),
        ("host::/x", "empty port"),
        ("docker://", "empty container name"),
        ("docker:///x", "empty container name"),
        ("docker://@c/x", "empty username"),
        ("docker://container", "missing path after the container name"),
        ("~no-such-user-xyz/x", "unable to expand '~no-such-user-xyz': no such user"),
        ("a\x00b", "NUL character"),
    ],
)
def test_invalid_sync_urls(raw, message):
    with pytest.raises(ValueError) as caught:
        parse_url(raw, "beta", environment={})
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"invalid URL {raw!r}")


@pytest.mark.parametrize(
    "side, environment, captured",
    [
        ("alpha", {"DOCKER_HOST": "tcp://h:2375"}, {"DOCKER_HOST": "tcp://h:2375"}),
        ("beta", {"DOCKER_HOST": "tcp://h", "MUTAGEN_BETA_DOCKER_HOST": "ssh://b"}, {"DOCKER_HOST": "ssh://b"}),
        ("alpha", {"DOCKER_HOST": "tcp://h", "MUTAGEN_BETA_DOCKER_HOST": "ssh://b"}, {"DOCKER_HOST": "tcp://h"}),
        ("alpha", {"DOCKER_CONTEXT": "remote", "DOCKER_TLS_VERIFY": "1", "PATH": "/bin"},
         {"DOCKER_CONTEXT": "remote", "DOCKER_TLS_VERIFY": "1"}),
        ("beta", {"DOCKER_CONFIG": "/c", "DOCKER_CERT_PATH": "/certs", "DOCKER_API_VERSION": "1.41", "DOCKER_TLS": "1"},
         {"DOCKER_CONFIG": "/c", "DOCKER_CERT_PATH": "/certs", "DOCKER_API_VERSION": "1.41", "DOCKER_TLS": "1"}),
        ("alpha", {"DOCKER_HOST": ""}, {}),
        # an explicitly empty prefixed variable hides the unprefixed one for that side
        ("beta", {"DOCKER_HOST": "tcp://h", "MUTAGEN_BETA_DOCKER_HOST": ""}, {}),
    ],
)
def test_docker_environment_is_captured_per_side(side, environment, captured):
    assert dict(parse_url("docker://c/x", side, environment).environment) == captured


def test_docker_environment_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("MUTAGEN_ALPHA_DOCKER_CONTEXT", "from-process")
    assert parse_url("docker://c/x", "alpha").environment == {"DOCKER_CONTEXT": "from-process"}


def test_ssh_and_local_urls_capture_nothing():
    environment = {"DOCKER_HOST": "tcp://h"}
    assert parse_url("host:/x", "alpha", environment).environment == {}
    assert parse_url("/x", "alpha", environment).environment == {}


@pytest.mark.parametrize(
    "raw",
    ["host:~/project", "me@host:2222:/var/www", "host:relative/dir", "docker://c/~/x", "docker://me@c/var/www",
     "docker://c/C:/x", "/abs/path"],
)
def test_format_round_trips(raw):
    url = parse_url(raw, "alpha", environment={})
    assert format_url(url) == raw
    assert parse_url(format_url(url), "alpha", environment={}) == url


def test_url_is_immutable():
    url = parse_url("host:/x", "alpha", environment={})
    with pytest.raises(AttributeError):
        url.path = "/y"  # type: ignore[misc]


def test_side_must_be_known():
    with pytest.raises(ValueError, match="invalid endpoint side 'gamma'"):
        parse_url("/x", "gamma")


# ---------------------------------------------------------------------------------------------

# (raw, protocol, user, host, port, endpoint)
FORWARD = [
    ("tcp:localhost:8080", LOCAL, "", "", 0, "tcp:localhost:8080"),
    ("tcp::3000", LOCAL, "", "", 0, "tcp::3000"),
    ("tcp4:127.0.0.1:80", LOCAL, "", "", 0, "tcp4:127.0.0.1:80"),
    ("tcp6:[::1]:80", LOCAL, "", "", 0, "tcp6:[::1]:80"),
    ("unix:/tmp/app.sock", LOCAL, "", "", 0, "unix:/tmp/app.sock"),
    ("unix:app.sock", LOCAL, "", "", 0, "unix:" + os.path.join(CWD, "app.sock")),
    ("unix:~/s.sock", LOCAL, "", "", 0, "unix:" + os.path.join(HOME, "s.sock")),
    ("user@example.com:tcp:localhost:5432", SSH, "user", "example.com", 0, "tcp:localhost:5432"),
    ("host:2222:unix:/var/run/x.sock", SSH, "", "host", 2222, "unix:/var/run/x.sock"),
    ("host:unix:relative.sock", SSH, "", "host", 0, "unix:relative.sock"),  # remote: not normalized
    ("docker://web:tcp:localhost:80", DOCKER, "", "web", 0, "tcp:localhost:80"),
    ("docker://me@web:unix:/run/s.sock", DOCKER, "me", "web", 0, "unix:/run/s.sock"),
]


@pytest.mark.parametrize("raw, protocol, user, host, port, endpoint", FORWARD)
def test_parse_forward_url(raw, protocol, user, host, port, endpoint):
    url = parse_forward_url(raw, "source", environment={})
    assert (url.protocol, url.user, url.host, url.port, url.path) == (protocol, user, host, port, endpoint)


@pytest.mark.parametrize(
    "raw, message",
    [
        ("", "empty URL"),
        ("tcp:localhost", "missing port in address"),
        ("tcp:localhost:0", "port '0' is not a number between 1 and 65535"),
        ("tcp:localhost:65536", "port '65536' is not a number between 1 and 65535"),
        ("tcp:localhost:http", "port 'http' is not a number"),
        ("tcp:::1:80", "too many colons"),
        ("tcp6:[::1:80", "missing ']'"),
        ("tcp4:[::1]:80", "an IPv6 host with tcp4"),
        ("unix:", "empty socket path"),
        ("udp:localhost:53", "expected <protocol>:<address> with protocol one of tcp, tcp4, tcp6, unix"),
        ("localhost:8080", "not a forwarding endpoint"),
        ("host:udp:x:1", "expected <protocol>:<address>"),
        ("host:99999:tcp:x:1", "port 99999 out of range"),
        ("docker://web/tcp:x:1", "separates the container and the endpoint with ':'"),
        ("docker://:tcp:x:1", "empty container name"),
        ("docker://web", "missing forwarding endpoint"),
        ("docker://web:tcp:x", "missing port in address"),
    ],
)
def test_invalid_forward_urls(raw, message):
    with pytest.raises(ValueError) as caught:
        parse_forward_url(raw, "destination", environment={})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_forward_docker_environment_uses_source_and_destination_prefixes():
    environment = {"MUTAGEN_SOURCE_DOCKER_HOST": "a", "MUTAGEN_DESTINATION_DOCKER_HOST": "b"}
    assert parse_forward_url("docker://w:tcp:x:1", "source", environment).environment == {"DOCKER_HOST": "a"}
    assert parse_forward_url("docker://w:tcp:x:1", "destination", environment).environment == {"DOCKER_HOST": "b"}


@pytest.mark.parametrize(
    "raw", ["tcp:localhost:8080", "me@host:2222:unix:/x.sock", "docker://me@web:tcp:localhost:80", "host:tcp6:[::1]:22"]
)
def test_forward_format_round_trips(raw):
    url = parse_forward_url(raw, "source", environment={})
    assert format_url(url) == raw


@pytest.mark.parametrize("text, split", [("tcp:h:1", ("tcp", "h:1")), ("unix:/s", ("unix", "/s"))])
def test_parse_forwarding_endpoint(text, split):
    assert parse_forwarding_endpoint(text) == split


def test_constructed_url_defaults():
    assert Url("local", path="/x") == Url("local", "", "", 0, "/x", {})
