"""Formatting of forwarding sessions from constructed states: human list (short and long), the
monitor header and line, JSON field names."""

from __future__ import annotations

import json

import pytest

from mutagen_actors.cli import forward_output
from mutagen_actors.wire.messages.forward import (
    ForwardConfiguration,
    ForwardEndpointState,
    ForwardSessionState,
    SocketConfiguration,
)
from mutagen_actors.wire.messages.sync import EndpointUrl

ID = "fwrd_" + "a" * 43
D = "-" * 80


def state(**overrides) -> ForwardSessionState:
    values = dict(
        identifier=ID, created=1_700_000_000.5, status="forwarding",
        source=ForwardEndpointState(url=EndpointUrl(path="tcp:localhost:8080"), connected=True),
        destination=ForwardEndpointState(url=EndpointUrl(path="unix:/run/app.sock"),
                                         connected=True),
        listening="tcp:127.0.0.1:8080", open_connections=2, total_connections=7,
        total_outbound_data=1500, total_inbound_data=2_500_000,
    )
    values.update(overrides)
    return ForwardSessionState(**values)


def test_list_short():
    assert forward_output.list_lines([state(name="web")]) == [
        D, "Name: web", f"Identifier: {ID}",
        "Source:", "\tURL: tcp:localhost:8080", "\tConnected: Yes",
        "Destination:", "\tURL: unix:/run/app.sock", "\tConnected: Yes",
        "Status: Forwarding",
        "Connections: 2 open, 7 total, 1.5 kB outbound, 2.5 MB inbound",
        D,
    ]


def test_list_empty():
    assert forward_output.list_lines([]) == [D, "No forwarding sessions found", D]


def test_list_long_shows_labels_and_each_sides_socket_settings():
    configuration = ForwardConfiguration(
        socket=SocketConfiguration(overwrite_mode="overwrite", permission_mode=0o660),
        source=SocketConfiguration(owner="id:1000", permission_mode=0o600))
    lines = forward_output.list_lines([state(labels={"b": "", "a": "1"},
                                             configuration=configuration)], long=True)
    assert lines[1:4] == [f"Identifier: {ID}", "Labels:", "\ta: 1"]
    assert lines[4] == "\tb: <empty>"
    assert lines[5:13] == [
        "Source:", "\tURL: tcp:localhost:8080", "\tConfiguration:",
        "\t\tSocket overwrite mode: Overwrite", "\t\tSocket owner: id:1000",
        "\t\tSocket group: Default", "\t\tSocket permission mode: 0600", "\tConnected: Yes"]
    assert lines[13:21] == [
        "Destination:", "\tURL: unix:/run/app.sock", "\tConfiguration:",
        "\t\tSocket overwrite mode: Overwrite", "\t\tSocket owner: Default",
        "\t\tSocket group: Default", "\t\tSocket permission mode: 0660", "\tConnected: Yes"]


@pytest.mark.parametrize("overrides, tail", [
    ({"paused": True, "status": "disconnected"}, ["Status: [Paused]"]),
    ({"status": "connecting-source"}, ["Status: Connecting to source"]),
    ({"status": "halted-on-actor-failure", "last_error": "cannot listen on x: in use"},
     ["Last error: cannot listen on x: in use",
      "Status: Halted due to repeated forwarder failure"]),
    ({"last_error": "cannot connect to tcp:h:1: connection refused"},
     ["Last error: cannot connect to tcp:h:1: connection refused", "Status: Forwarding",
      "Connections: 2 open, 7 total, 1.5 kB outbound, 2.5 MB inbound"]),
    ({"status": "some-new-status"}, ["Status: some-new-status"]),
])
def test_status_lines(overrides, tail):
    lines = forward_output.session_lines(state(**overrides))
    assert lines[-len(tail):] == tail


def test_remote_url_with_docker_environment():
    url = EndpointUrl(protocol="docker", user="me", host="web", path="tcp:localhost:80",
                      environment={"DOCKER_HOST": "tcp://d:2375"})
    lines = forward_output.session_lines(
        state(destination=ForwardEndpointState(url=url), status="connecting-destination"))
    assert "\tURL: docker://me@web:tcp:localhost:80\n\t\tDOCKER_HOST=tcp://d:2375" in lines


@pytest.mark.parametrize("overrides, line", [
    ({}, "Status: Forwarding: 2 open, 7 total, 1.5 kB outbound, 2.5 MB inbound"),
    ({"paused": True}, "Status: [Paused]"),
    ({"last_error": "boom"}, "Status: [X] Forwarding: 2 open, 7 total, 1.5 kB outbound, 2.5 MB inbound"),
    ({"status": "connecting-source", "last_error": "boom"}, "Status: [X] Connecting to source"),
    ({"total_outbound_data": 0, "total_inbound_data": 9}, "Status: Forwarding: 2 open, 7 total, 0 B outbound, 9 B inbound"),
])
def test_monitor_line(overrides, line):
    assert forward_output.monitor_line(state(**overrides)) == line


def test_monitor_header():
    assert forward_output.monitor_header_lines(state(name="web")) == [
        "Name: web", f"Identifier: {ID}", "Source:", "\tURL: tcp:localhost:8080",
        "Destination:", "\tURL: unix:/run/app.sock"]


def test_json_field_names():
    configuration = ForwardConfiguration(socket=SocketConfiguration(group="staff"),
                                         destination=SocketConfiguration(overwrite_mode="leave"))
    url = EndpointUrl(protocol="ssh", user="me", host="box", port=2222, path="tcp:localhost:5432")
    data = forward_output.session_json(state(
        name="db", labels={"team": "x"}, configuration=configuration,
        destination=ForwardEndpointState(url=url, connected=False)))
    assert json.loads(json.dumps(data)) == {
        "identifier": ID, "version": 1, "creationTime": "2023-11-14T22:13:20.5Z",
        "socket": {"group": "staff"},
        "name": "db", "labels": {"team": "x"}, "paused": False, "status": "forwarding",
        "lastError": "",
        "source": {"protocol": "local", "endpoint": "tcp:localhost:8080",
                   "socket": {"group": "staff"}, "connected": True},
        "destination": {"protocol": "ssh", "user": "me", "host": "box", "port": 2222,
                        "endpoint": "tcp:localhost:5432",
                        "socket": {"overwriteMode": "leave", "group": "staff"},
                        "connected": False},
        "listening": "tcp:127.0.0.1:8080",
        "openConnections": 2, "totalConnections": 7, "totalOutboundData": 1500,
        "totalInboundData": 2_500_000, "errors": 0,
    }
    assert forward_output.list_json([]) == []
