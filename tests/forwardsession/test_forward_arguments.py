"""``forward create`` flags -> ``ForwardCreate`` (pure apart from files and look-ups): what is
sent for good input, and the one-line message for bad input."""

from __future__ import annotations

import getpass
import grp
import os

import pytest

from mutagen_actors.cli import forward_arguments as fa
from mutagen_actors.wire.messages.forward import ForwardConfiguration, SocketConfiguration

S, DST = "tcp:127.0.0.1:8080", "tcp:127.0.0.1:3000"


def build(*, source=S, destination=DST, global_path="/nonexistent/global.yml", environment=None,
          **options):
    return fa.build_create({"source": source, "destination": destination, **options},
                           environment=environment or {}, global_path=global_path)


def test_defaults():
    request = build()
    assert (request.source.protocol, request.source.path) == ("local", S)
    assert (request.destination.protocol, request.destination.path) == ("local", DST)
    assert (request.name, request.labels, request.paused) == ("", {}, False)
    assert request.configuration == ForwardConfiguration()


def test_name_labels_paused():
    request = build(name="web", labels=["team=web,tier", "env=dev"], paused=True)
    assert (request.name, request.labels, request.paused) == \
        ("web", {"team": "web", "tier": "", "env": "dev"}, True)


def test_unix_source_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    request = build(source="unix:app.sock")
    assert request.source.path == f"unix:{tmp_path}/app.sock"


@pytest.mark.parametrize("options, expected", [
    ({"socket_overwrite_mode": "overwrite"},
     ForwardConfiguration(socket=SocketConfiguration(overwrite_mode="overwrite"))),
    ({"socket_permission_mode": "0660", "socket_permission_mode_source": "600"},
     ForwardConfiguration(socket=SocketConfiguration(permission_mode=0o660),
                          source=SocketConfiguration(permission_mode=0o600))),
    ({"socket_owner_source": "id:0", "socket_group_destination": "0"},
     ForwardConfiguration(source=SocketConfiguration(owner="id:0"),
                          destination=SocketConfiguration(group="0"))),
    ({"socket_overwrite_mode_destination": "leave"},
     ForwardConfiguration(destination=SocketConfiguration(overwrite_mode="leave"))),
])
def test_socket_flags(options, expected):
    assert build(**options).configuration == expected


def test_owner_and_group_names_of_this_machine_are_accepted():
    group = grp.getgrgid(os.getgid()).gr_name
    request = build(socket_owner=getpass.getuser(), socket_group=group)
    assert request.configuration.socket == SocketConfiguration(owner=getpass.getuser(),
                                                               group=group)


def test_precedence_global_then_files_then_flags(tmp_path):
    global_file = tmp_path / "global.yml"
    global_file.write_text("forward:\n  defaults:\n    socket:\n      overwriteMode: overwrite\n"
                           "      permissionMode: 0644\n")
    extra = tmp_path / "extra.yml"
    extra.write_text("forward:\n  defaults:\n    socket:\n      permissionMode: 0640\n"
                     "    configurationSource:\n      socket:\n        group: id:0\n")
    request = build(global_path=str(global_file), configuration_files=[str(extra)],
                    socket_permission_mode="0660")
    assert request.configuration == ForwardConfiguration(
        socket=SocketConfiguration(overwrite_mode="overwrite", permission_mode=0o660),
        source=SocketConfiguration(group="id:0"))
    skipped = build(global_path=str(global_file), no_global_configuration=True)
    assert skipped.configuration == ForwardConfiguration()


def test_remote_urls_parse_and_capture_docker_environment():
    request = build(source="me@box:2222:tcp:localhost:5432",
                    destination="docker://web:unix:/run/app.sock",
                    environment={"MUTAGEN_DESTINATION_DOCKER_HOST": "tcp://d:2375",
                                 "DOCKER_CONTEXT": "ctx"})
    assert (request.source.protocol, request.source.user, request.source.host,
            request.source.port, request.source.path) == \
        ("ssh", "me", "box", 2222, "tcp:localhost:5432")
    assert (request.destination.protocol, request.destination.host,
            request.destination.path, request.destination.environment) == \
        ("docker", "web", "unix:/run/app.sock",
         {"DOCKER_HOST": "tcp://d:2375", "DOCKER_CONTEXT": "ctx"})


LONG = "unix:/tmp/" + "x" * 120


@pytest.mark.parametrize("options, message", [
    ({"source": ""}, "source: invalid URL '': empty URL"),
    ({"source": "tcp:127.0.0.1:65536"}, "source: invalid forwarding endpoint 'tcp:127.0.0.1:65536': port '65536'"),
    ({"source": "tcp:127.0.0.1:0"}, "source: invalid forwarding endpoint 'tcp:127.0.0.1:0': port '0'"),
    ({"destination": "tcp::3000"}, "destination: invalid forwarding endpoint 'tcp::3000': a destination needs a host"),
    ({"source": "udp:127.0.0.1:53"}, "source: invalid URL 'udp:127.0.0.1:53'"),
    ({"source": "tcp6:::1:80"}, "source: invalid forwarding endpoint 'tcp6:::1:80'"),
    ({"source": LONG}, f"source: unix socket path too long in '{LONG}'"),
    ({"source": "unix:"}, "source: invalid forwarding endpoint 'unix:': empty socket path"),
    ({"destination": S}, f"source and destination are the same endpoint ({S})"),
    ({"name": "web_1"}, "--name: invalid session name 'web_1'"),
    ({"name": "defaults"}, "--name: invalid session name 'defaults'"),
    ({"labels": ["=x"]}, "--label: invalid label specification '=x'"),
    ({"socket_overwrite_mode": "replace"},
     "--socket-overwrite-mode: invalid socket overwrite mode 'replace' (expected one of: leave, overwrite)"),
    ({"socket_permission_mode_source": "0888"},
     "--socket-permission-mode-source: invalid socket permission mode '0888'"),
    ({"socket_permission_mode": "04755"}, "--socket-permission-mode: invalid socket permission mode '04755'"),
    ({"socket_owner": "id:x"}, "--socket-owner: invalid socket owner 'id:x'"),
    ({"socket_group_destination": "a b"}, "--socket-group-destination: invalid socket group 'a b'"),
    ({"socket_owner_source": "no-such-user-here"},
     "--socket-owner-source: unknown user 'no-such-user-here'"),
    ({"socket_group": "no-such-group-here"}, "--socket-group: unknown group 'no-such-group-here'"),
    ({"configuration_files": ["/nonexistent/x.yml"]},
     "invalid configuration file '/nonexistent/x.yml': no such file"),
])
def test_bad_input(options, message):
    with pytest.raises(fa.ArgumentError) as raised:
        build(**options)
    assert str(raised.value).startswith(message), str(raised.value)
    assert "\n" not in str(raised.value)


def test_bad_configuration_file_names_the_key(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("forward:\n  defaults:\n    socket:\n      overwriteMode: sometimes\n")
    with pytest.raises(fa.ArgumentError) as raised:
        build(configuration_files=[str(bad)])
    assert f"invalid configuration file '{bad}'" in str(raised.value)
    assert "forward.defaults.socket.overwriteMode" in str(raised.value)


def test_owner_names_are_not_looked_up_for_remote_sides():
    request = build(source="box:tcp:localhost:80", socket_owner_source="someone-remote")
    assert request.configuration.source.owner == "someone-remote"


@pytest.mark.parametrize("args, message", [
    ((["x"], "k=v", False), "multiple selection mechanisms present"),
    (([], "", False), "no selection mechanisms present"),
    (([], "a in (", False), "--label-selector: invalid label selector"),
])
def test_selection_errors(args, message):
    with pytest.raises(fa.ArgumentError) as raised:
        fa.selection(*args)
    assert str(raised.value).startswith(message)


def test_selection_defaults_to_all_for_list():
    assert fa.selection([], "", False, default_all=True).all is True
