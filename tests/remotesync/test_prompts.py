"""SSH questions relayed to the terminal of the waiting ``sync create`` / ``sync resume``: the
real CLI runs under a pseudo-terminal against a real daemon and the private sshd; the test
reads what the user would see and types the answers.

- an unknown host key: "yes" trusts it (added to known_hosts, the session syncs), "no" refuses
  with one line and leaves no session; without a terminal it is refused as before;
- ``resume`` of a paused session asks the same question;
- a password (a second private sshd allowing password logins for a user with a known password):
  the right one connects (typed once, never echoed), a wrong one fails clearly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from remote import infra

from mutagen_actors.supervisor.prompt_relay import TEST_TIMEOUT_VARIABLE

from .conftest import (
    HomeDaemon,
    RemoteSync,
    start_home_daemon,
    stop_home_daemon,
    tree,
    wait_until,
    write,
)
from .terminal import HOST_KEY_QUESTION, Terminal, error_lines

PASSWORD_USER = "mutagen-pw"
PASSWORD = "correct horse 7"


def descendants(pid: int) -> set:
    """Every process below ``pid`` (a private sshd's connections and their sessions)."""
    found, todo = set(), [pid]
    while todo:
        for child in infra.children_of(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# ------------------------------------------------------------------- unknown host key


@pytest.fixture(scope="module")
def unknown_key(sshd):
    """A daemon whose ssh directory knows no host key (fresh for this module)."""
    directory = sshd.client_files(f"client-prompts-{os.getpid()}", known_hosts="")
    handle, base = start_home_daemon(directory.directory)
    yield RemoteSync(handle), directory
    stop_home_daemon(handle, base)


def known_hosts_text(directory) -> str:
    with open(directory.known_hosts) as handle:
        return handle.read()


@pytest.fixture
def local_and_remote(sshd):
    base = tempfile.mkdtemp(prefix="mr-prompt-")
    names = []

    def make(name: str) -> tuple[str, str]:
        remote = os.path.join(sshd.home, name)
        shutil.rmtree(remote, ignore_errors=True)
        names.append(remote)
        return os.path.join(base, name), remote

    yield make
    shutil.rmtree(base, ignore_errors=True)
    for remote in names:
        shutil.rmtree(remote, ignore_errors=True)


def test_without_a_terminal_an_unknown_key_is_refused(unknown_key, local_and_remote):
    sync, directory = unknown_key
    local, _ = local_and_remote("prompt-pipe")
    result = sync.daemon.cli("sync", "create", local, "testhost:prompt-pipe", timeout=90)
    assert result.returncode == 1, result
    assert "host key for [127.0.0.1]:" in result.stderr and "is not known" in result.stderr
    assert len(error_lines(result.stderr)) == 1, result.stderr
    assert sync.list() == [] and known_hosts_text(directory) == ""


def test_unknown_key_answered_no_refuses_with_one_line(unknown_key, sshd, local_and_remote):
    sync, directory = unknown_key
    local, _ = local_and_remote("prompt-no")
    terminal = Terminal(sync.daemon, "sync", "create", local, "testhost:prompt-no")
    question = terminal.expect(HOST_KEY_QUESTION)
    assert f"The authenticity of host '[127.0.0.1]:{sshd.port}' can't be established." in question
    assert "ED25519 key fingerprint is SHA256:" in question
    terminal.type("no")
    status, text = terminal.finish()
    assert status == 1, text
    errors = error_lines(text)
    assert len(errors) == 1 and "was not accepted" in errors[0], text
    assert sync.list() == [] and known_hosts_text(directory) == ""


def test_resume_asks_and_yes_trusts_the_key(unknown_key, sshd, local_and_remote):
    sync, directory = unknown_key
    local, remote = local_and_remote("prompt-yes")
    write(local, "hello.txt", "hello")
    created = sync.daemon.cli("sync", "create", "--paused", "--name", "asked", local,
                              "testhost:prompt-yes", timeout=60)
    assert created.returncode == 0, created.stderr
    try:
        terminal = Terminal(sync.daemon, "sync", "resume", "asked")
        terminal.expect(HOST_KEY_QUESTION)
        terminal.type("yes")
        status, text = terminal.finish()
        assert status == 0, text
        assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 " in known_hosts_text(directory)
        wait_until(lambda: tree(remote).get("hello.txt") == ("file", b"hello", False), 30,
                   what="the file to reach the remote after the resume")
        (state,) = sync.list()
        assert state.alpha.connected and state.beta.connected
    finally:
        sync.daemon.cli("sync", "terminate", "asked", check=True)


def test_create_answered_yes_then_background_reconnects_never_ask(sshd, local_and_remote):
    directory = sshd.client_files(f"client-prompts-yes-{os.getpid()}", known_hosts="")
    handle, base = start_home_daemon(directory.directory)
    sync = RemoteSync(handle)
    listener_children = descendants(sshd.process.pid)
    try:
        local, remote = local_and_remote("prompt-create-yes")
        write(local, "a.txt", "alpha")
        terminal = Terminal(handle, "sync", "create", "--name", "yes", local,
                            "testhost:prompt-create-yes")
        terminal.expect(HOST_KEY_QUESTION)
        terminal.type("yes")
        status, text = terminal.finish()
        assert status == 0 and "Created session sync_" in text, text
        assert text.count(HOST_KEY_QUESTION) == 1, text
        assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 " in known_hosts_text(directory)
        wait_until(lambda: tree(remote).get("a.txt") == ("file", b"alpha", False), 30,
                   what="the file to reach the remote")
        write(local, "b.txt", "later")  # watching: no flush
        wait_until(lambda: tree(remote).get("b.txt") == ("file", b"later", False), 30,
                   what="a later edit to reach the remote")

        # The key is forgotten and the connection cut: the session reconnects by itself, with
        # no command waiting, so nobody is asked and the reason is the session's last error.
        with open(directory.known_hosts, "w"):
            pass
        cut = descendants(sshd.process.pid) - listener_children
        assert cut, "no ssh connection of the session found"
        for pid in cut:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            (state,) = wait_until(
                lambda: [s for s in sync.list() if "is not known" in s.last_error], 30,
                what="the background reconnect to fail on the unknown key")
        except AssertionError as error:
            raise AssertionError(f"{error}: {sync.list()}") from None
        assert not state.beta.connected, state
        handle.cli("sync", "terminate", "yes", check=True)
    finally:
        stop_home_daemon(handle, base)


@pytest.fixture
def impatient(sshd):
    """A daemon knowing no host key whose questions must be answered within 2 s."""
    directory = sshd.client_files(f"client-prompts-late-{os.getpid()}", known_hosts="")
    base = tempfile.mkdtemp(prefix="mr-", dir="/tmp")
    home = os.path.join(base, "home")
    os.makedirs(home)
    os.symlink(directory.directory, os.path.join(home, ".ssh"))
    handle = HomeDaemon(os.path.join(base, "data"), home=home,
                        extra={TEST_TIMEOUT_VARIABLE: "2"})
    handle.start()
    yield RemoteSync(handle), directory
    stop_home_daemon(handle, base)


def test_an_unanswered_question_or_ctrl_c_ends_the_create_and_leaves_nothing(impatient,
                                                                            local_and_remote):
    sync, directory = impatient
    local, _ = local_and_remote("prompt-late")
    terminal = Terminal(sync.daemon, "sync", "create", local, "testhost:prompt-late")
    terminal.expect(HOST_KEY_QUESTION)
    status, text = terminal.finish(timeout=60)  # nobody types anything
    assert status == 1, text
    assert "no answer within 2 s" in text, text
    errors = error_lines(text)
    assert len(errors) == 1 and "no answer to the prompt within 2 s" in errors[0], text
    assert sync.list() == [] and known_hosts_text(directory) == ""

    terminal = Terminal(sync.daemon, "sync", "create", local, "testhost:prompt-late")
    terminal.expect(HOST_KEY_QUESTION)
    terminal.process.send_signal(signal.SIGINT)
    status, text = terminal.finish(timeout=60)
    assert status != 0, text
    sync.daemon.wait_log(lambda entry: entry.get("event") == "prompt not answered"
                         and "went away" in entry.get("reason", ""), timeout=30,
                         what="the daemon to notice the command went away")
    assert sync.list() == [] and known_hosts_text(directory) == ""


# ------------------------------------------------------------------- passwords


@pytest.fixture(scope="module")
def password_sshd(sshd):
    """A private sshd allowing password logins for ``PASSWORD_USER`` (password ``PASSWORD``);
    a daemon whose ssh directory knows its key and has no identity for it (alias ``pwhost``)."""
    entry, _ = infra.ensure_login_user(PASSWORD_USER)
    infra.run(["chpasswd"], input=f"{PASSWORD_USER}:{PASSWORD}".encode())
    root = tempfile.mkdtemp(prefix="h9-pwsshd-", dir="/tmp")
    os.chmod(root, 0o755)
    port = infra.free_port()
    host_key = os.path.join(root, "host_ed25519")
    public = infra.generate_key(host_key, "pw-host")
    config = os.path.join(root, "sshd_config")
    with open(config, "w") as handle:
        handle.write("\n".join([
            f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {root}/sshd.pid", "AuthorizedKeysFile none", "PubkeyAuthentication no",
            "PasswordAuthentication yes", "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no", "MaxSessions 50", "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE"]) + "\n")
    log_path = os.path.join(root, "sshd.log")
    process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", config, "-E", log_path],
                               stdin=subprocess.DEVNULL)
    client = os.path.join(root, "client")
    os.makedirs(client, mode=0o700)
    with open(os.path.join(client, "config"), "w") as handle:
        handle.write(f"Host pwhost\n  HostName 127.0.0.1\n  Port {port}\n  User {PASSWORD_USER}\n")
    with open(os.path.join(client, "known_hosts"), "w") as handle:
        handle.write(f"[127.0.0.1]:{port} {' '.join(public.split()[:2])}\n")
    handle = base = None
    try:
        infra.wait_for(lambda: infra.port_open(port) or process.poll() is not None, 10,
                       "password sshd listening")
        assert process.poll() is None, open(log_path).read()
        handle, base = start_home_daemon(client)
        yield RemoteSync(handle), entry.pw_dir
    finally:
        if handle is not None:
            stop_home_daemon(handle, base)
        infra.stop_process(process)
        shutil.rmtree(root, ignore_errors=True)


def test_password_typed_once_without_echo_connects(password_sshd):
    sync, home = password_sshd
    base = tempfile.mkdtemp(prefix="mr-pw-")
    local = os.path.join(base, "local")
    remote = os.path.join(home, "pw-project")
    shutil.rmtree(remote, ignore_errors=True)
    write(local, "secret-free.txt", "synced")
    try:
        terminal = Terminal(sync.daemon, "sync", "create", "--name", "pw", local,
                            "pwhost:pw-project")
        terminal.expect("Password: ", timeout=90)
        terminal.type(PASSWORD)
        status, text = terminal.finish()
        assert status == 0 and "Created session sync_" in text, text
        assert PASSWORD not in text  # never echoed
        assert text.count("Password: ") == 1, text  # the session's own connect reused it
        wait_until(lambda: tree(remote).get("secret-free.txt") == ("file", b"synced", False), 30,
                   what="the file to reach the password-only remote")
        sync.daemon.cli("sync", "terminate", "pw", check=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(remote, ignore_errors=True)


def test_wrong_password_fails_clearly_and_leaves_no_session(password_sshd):
    sync, _home = password_sshd
    base = tempfile.mkdtemp(prefix="mr-pw-")
    try:
        terminal = Terminal(sync.daemon, "sync", "create", os.path.join(base, "local"),
                            "pwhost:pw-wrong")
        for _ in range(3):  # asked again after each refusal, three times in all (as OpenSSH)
            terminal.expect("Password: ", timeout=90)
            terminal.type("not the password")
        status, text = terminal.finish()
        assert status == 1, text
        errors = error_lines(text)
        assert len(errors) == 1, text
        assert "unable to authenticate to" in errors[0], errors
        assert "the password was not accepted" in errors[0], errors
        assert sync.list() == []
    finally:
        shutil.rmtree(base, ignore_errors=True)
