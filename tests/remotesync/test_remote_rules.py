"""Pure rules of remote endpoints: root resolution on the remote, create validation of remote
URLs, how a remote is named, the actor chosen for a side."""

from __future__ import annotations

import pytest

from mutagen_actors.agent.remote_endpoint_actor import describe, url_from_args
from mutagen_actors.agent.serve_endpoint import resolve_root
from mutagen_actors.supervisor import sync_manager
from mutagen_actors.supervisor.urls import Url
from mutagen_actors.wire.messages import sync as sm

HOME = "/home/dev"


@pytest.mark.parametrize("path, root", [
    ("project", "/home/dev/project"),
    ("a/b/../c", "/home/dev/a/c"),
    ("~", "/home/dev"),
    ("~/work/app", "/home/dev/work/app"),
    ("", "/home/dev"),
    ("/srv/app/", "/srv/app"),
    ("/root", "/root"),
])
def test_remote_roots_resolve_against_the_remote_home(path, root):
    assert resolve_root(path, HOME) == root


def ssh(path, host="h", user="", port=0):
    return sm.EndpointUrl(protocol="ssh", user=user, host=host, port=port, path=path)


def docker(path, host="c"):
    return sm.EndpointUrl(protocol="docker", host=host, path=path)


LOCAL = sm.EndpointUrl(path="/tmp/local")


@pytest.mark.parametrize("alpha, beta, roots", [
    (LOCAL, ssh("project"), ("/tmp/local", "project")),
    (docker("/app"), LOCAL, ("/app", "/tmp/local")),
    (ssh("p"), docker("/app"), ("p", "/app")),
    (ssh("p", host="one"), ssh("p", host="two"), ("p", "p")),
    (ssh("p", port=22), ssh("p", port=2222), ("p", "p")),
])
def test_remote_urls_are_accepted(alpha, beta, roots):
    assert sync_manager.validate_roots(alpha, beta) == roots


@pytest.mark.parametrize("alpha, beta, words", [
    (LOCAL, ssh(""), "has no path"),
    (LOCAL, ssh("p", host=""), "has no host"),
    (ssh("p"), ssh("p/"), "same path"),
    (LOCAL, sm.EndpointUrl(protocol="ftp", host="h", path="p"), "unknown endpoint protocol"),
    (sm.EndpointUrl(path="relative"), ssh("p"), "must be absolute"),
])
def test_bad_remote_urls_are_refused(alpha, beta, words):
    with pytest.raises(ValueError, match=words):
        sync_manager.validate_roots(alpha, beta)


@pytest.mark.parametrize("url, text", [
    (Url("ssh", "", "testhost", 0, "p"), "testhost"),
    (Url("ssh", "me", "example", 2222, "p"), "me@example:2222"),
    (Url("docker", "", "box", 0, "/app"), "docker://box"),
    (Url("docker", "dev", "box", 0, "/app"), "docker://dev@box"),
])
def test_remotes_are_named_as_users_write_them(url, text):
    assert describe(url) == text


def test_the_actor_arguments_carry_the_url_and_captured_environment():
    args = {"protocol": "docker", "user": "dev", "host": "box", "port": 0, "root": "~/app",
            "environment": {"DOCKER_HOST": "unix:///x.sock"}}
    assert url_from_args(args) == Url("docker", "dev", "box", 0, "~/app",
                                       {"DOCKER_HOST": "unix:///x.sock"})
