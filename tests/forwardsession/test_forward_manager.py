"""The daemon side's pure rules: what a forwarder is started with, what create refuses (the
daemon never trusts the CLI), how start failures read, how totals add up over restarts."""

from __future__ import annotations

import pytest

from mutagen_actors.supervisor import forward_manager as manager
from mutagen_actors.supervisor.persistence import SessionRecord
from mutagen_actors.wire.messages import forward as fm
from mutagen_actors.wire.messages.sync import EndpointUrl

SRC, DST = "tcp:127.0.0.1:8080", "tcp:127.0.0.1:3000"


def create(source=SRC, destination=DST, configuration=None, paused=False) -> fm.ForwardCreate:
    return fm.ForwardCreate(EndpointUrl(path=source), EndpointUrl(path=destination), "", {},
                            paused, configuration or fm.ForwardConfiguration())


def test_forwarder_args_resolve_the_source_side_settings():
    configuration = fm.ForwardConfiguration(
        socket=fm.SocketConfiguration(overwrite_mode="overwrite", permission_mode=0o660,
                                      group="staff"),
        source=fm.SocketConfiguration(permission_mode=0o600, owner="id:1000"),
        destination=fm.SocketConfiguration(overwrite_mode="leave", owner="nobody"))
    args = manager.forwarder_args(create("unix:/run/a.sock", DST, configuration))
    assert args == {"source": "unix:/run/a.sock", "destination": DST,
                    "socket_overwrite_mode": "overwrite", "socket_owner": "id:1000",
                    "socket_group": "staff", "socket_permission_mode": 0o600,
                    "dial_timeout": manager.DIAL_TIMEOUT}


def test_forwarder_args_defaults():
    args = manager.forwarder_args(create())
    assert (args["socket_overwrite_mode"], args["socket_owner"], args["socket_group"],
            args["socket_permission_mode"]) == ("leave", "", "", 0o600)


def test_specs_one_forwarder_none_when_paused():
    import msgspec

    record = SessionRecord(id="fwrd_x", name="", kind="forward", created=0.0,
                           spec={"create": msgspec.to_builtins(create())})
    [spec] = manager.forward_specs(record)
    assert (spec.id, spec.actor_class, spec.args["source"]) == \
        ("forwarder", manager.FORWARDER_ACTOR, SRC)
    record.paused = True
    assert manager.forward_specs(record) == []


@pytest.mark.parametrize("source, destination, message", [
    (SRC, DST, None),
    ("unix:/run/a.sock", "unix:/run/b.sock", None),
    ("tcp6:[::1]:80", "tcp4:127.0.0.1:80", None),
    (EndpointUrl(protocol="ssh", host="box", path=SRC), DST, None),
    (SRC, EndpointUrl(protocol="docker", host="c", path=DST), None),
    (EndpointUrl(protocol="ssh", host="box", path=DST), DST, None),
    (EndpointUrl(protocol="ssh", host="box", path="unix:run/a.sock"), DST,
     "source: invalid forwarding endpoint 'unix:run/a.sock': a remote unix socket path must be absolute"),
    (SRC, EndpointUrl(protocol="docker", host="c", path="tcp:localhost:70000"),
     "destination: invalid forwarding endpoint 'tcp:localhost:70000': port 70000 is out of range"),
    (EndpointUrl(protocol="ssh", host="box", path="unix:/" + "x" * 120), DST,
     "source: unix socket path too long"),
    (EndpointUrl(protocol="ftp", host="box", path=SRC), DST,
     "source: ftp forwarding endpoints are not supported"),
    ("tcp:127.0.0.1:0", DST, "source: invalid forwarding endpoint 'tcp:127.0.0.1:0': a source needs a port"),
    ("tcp:127.0.0.1:99999", DST, "source: invalid forwarding endpoint 'tcp:127.0.0.1:99999': port 99999 is out of range"),
    (SRC, "tcp::80", "destination: invalid forwarding endpoint 'tcp::80': a destination needs a host"),
    ("udp:1.2.3.4:5", DST, "source: invalid forwarding endpoint 'udp:1.2.3.4:5'"),
    ("unix:relative.sock", DST, "source: the unix socket path must be absolute"),
    ("unix:/" + "x" * 120, DST, "source: unix socket path too long"),
    (SRC, SRC, "source and destination are the same endpoint"),
])
def test_validate_endpoints(source, destination, message):
    as_url = [u if isinstance(u, EndpointUrl) else EndpointUrl(path=u)
              for u in (source, destination)]
    if message is None:
        manager.validate_endpoints(*as_url)
        return
    with pytest.raises(ValueError) as raised:
        manager.validate_endpoints(*as_url)
    assert str(raised.value).startswith(message), str(raised.value)


@pytest.mark.parametrize("socket, message", [
    (fm.SocketConfiguration(), None),
    (fm.SocketConfiguration(overwrite_mode="sometimes"), "source: invalid socket overwrite mode"),
    (fm.SocketConfiguration(permission_mode=0o4755), "source: invalid socket permission mode"),
])
def test_validate_configuration(socket, message):
    configuration = fm.ForwardConfiguration(socket=socket)
    if message is None:
        manager.validate_configuration(configuration)
        return
    with pytest.raises(ValueError) as raised:
        manager.validate_configuration(configuration)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize("last_exit, reason", [
    ("start failed: on_start raised ForwardingError: cannot listen on tcp:x:1: address already "
     "in use", "cannot listen on tcp:x:1: address already in use"),
    ("start failed: not ready within 10 s", "not ready within 10 s"),
    ("killed by SIGKILL", "killed by SIGKILL"),
])
def test_listen_failure(last_exit, reason):
    assert manager.listen_failure(last_exit) == reason


def statistics(connections, outbound, inbound, errors=0, open_=0):
    return fm.ForwardingStatistics("tcp:127.0.0.1:1", open_, connections, outbound, inbound,
                                   errors, "")


def test_totals_add_up_over_incarnations():
    totals = manager.Totals()
    totals = manager.add_incarnation(totals, statistics(2, 10, 20, errors=1))
    totals = manager.add_incarnation(totals, None)
    totals = manager.add_incarnation(totals, statistics(1, 5, 6))
    assert totals == manager.Totals(connections=3, outbound=15, inbound=26, errors=1)


@pytest.mark.parametrize("last_exit, expected", [
    ("start failed: on_start raised ForwardingError: cannot listen on tcp:x:1: address already "
     "in use", "cannot listen on tcp:x:1: address already in use"),
    ("killed by SIGKILL", "actor 'forwarder' exceeded the restart budget"),
    ("", "actor 'forwarder' exceeded the restart budget"),
])
def test_halt_description(last_exit, expected):
    from mutagen_actors.supervisor.child_spec import ChildSpec
    from mutagen_actors.supervisor.session_supervisor import Child

    child = Child(ChildSpec("forwarder", manager.FORWARDER_ACTOR), last_exit=last_exit)
    reason = "actor 'forwarder' exceeded the restart budget (5 restarts within 30 s)"
    assert manager.halt_description(reason, child) == (
        expected if last_exit.startswith("start") else reason)
    assert manager.halt_description(reason, None) == reason
