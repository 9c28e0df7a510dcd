"""``sync create`` flags -> SyncCreate: precedence, comma splitting, per-side overrides,
configuration files, and every bad input with its message (pure: no daemon involved)."""

from __future__ import annotations

import textwrap

import pytest

from mutagen_actors.cli.sync_arguments import ArgumentError, build_create, selection
from mutagen_actors.wire.messages.sync import EndpointConfiguration, Selection, SyncConfiguration


@pytest.fixture
def roots(tmp_path):
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    alpha.mkdir()
    return str(alpha), str(beta)  # beta does not exist yet: valid, as in Mutagen


@pytest.fixture
def write(tmp_path):
    def write(name: str, text: str) -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


def create(roots, global_path=None, **options):
    alpha, beta = roots
    base = {"alpha": alpha, "beta": beta}
    if global_path is None:
        base["no_global_configuration"] = True
    return build_create({**base, **options}, environment={}, global_path=global_path)


def test_defaults_travel_as_default(roots):
    request = create(roots)
    assert request.configuration == SyncConfiguration()
    assert (request.name, request.labels, request.paused) == ("", {}, False)
    assert (request.alpha.protocol, request.alpha.path) == ("local", roots[0])
    assert (request.beta.protocol, request.beta.path) == ("local", roots[1])


def test_relative_local_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    request = build_create({"alpha": "a", "beta": "./b/../c", "no_global_configuration": True},
                           environment={})
    assert (request.alpha.path, request.beta.path) == (str(tmp_path / "a"), str(tmp_path / "c"))


@pytest.mark.parametrize("options, expected", [
    ({"mode": "two-way-resolved"}, {"mode": "two-way-resolved"}),
    ({"mode": "one-way-replica", "hash": "sha256"}, {"mode": "one-way-replica", "hash": "sha256"}),
    ({"symlink_mode": "posix-raw"}, {"symlink_mode": "posix-raw"}),
    ({"ignore_syntax": "docker", "ignores": ["a", "!b"]},
     {"ignore_syntax": "docker", "ignores": ["a", "!b"]}),
    ({"ignores": ["x,y", "z"]}, {"ignores": ["x", "y", "z"]}),
    ({"ignores": ["{a,b}"]}, None),  # split on the comma: '{a' is invalid -> see bad input
    ({"ignore_vcs": True}, {"ignore_vcs": True}),
    ({"no_ignore_vcs": True}, {"ignore_vcs": False}),
    ({"permissions_mode": "manual", "default_file_mode": "0755"},
     {"permissions_mode": "manual", "endpoint": EndpointConfiguration(default_file_mode=0o755)}),
    ({"default_file_mode": "644", "default_directory_mode": "0o750"},
     {"endpoint": EndpointConfiguration(default_file_mode=0o644, default_directory_mode=0o750)}),
    ({"max_entry_count": "500000", "max_staging_file_size": "10MB"},
     {"endpoint": EndpointConfiguration(max_entry_count=500000, max_staging_file_size=10_000_000)}),
    ({"max_staging_file_size": "1 GiB"},
     {"endpoint": EndpointConfiguration(max_staging_file_size=2**30)}),
    ({"max_entry_count": "0"}, {}),  # 0 = default (unlimited)
    ({"watch_mode": "force-poll", "watch_polling_interval": "3"},
     {"endpoint": EndpointConfiguration(watch_mode="force-poll", watch_polling_interval=3)}),
    ({"watch_mode": "force-poll", "watch_mode_beta": "no-watch"},
     {"endpoint": EndpointConfiguration(watch_mode="force-poll"),
      "beta": EndpointConfiguration(watch_mode="no-watch")}),
    ({"scan_mode_alpha": "full", "stage_mode_beta": "neighboring", "probe_mode": "assume"},
     {"endpoint": EndpointConfiguration(probe_mode="assume"),
      "alpha": EndpointConfiguration(scan_mode="full"),
      "beta": EndpointConfiguration(stage_mode="neighboring")}),
    ({"default_owner_alpha": "id:0", "default_group": "id:0", "compression": "none",
      "compression_beta": "lz4"},
     {"endpoint": EndpointConfiguration(default_group="id:0", compression="none"),
      "alpha": EndpointConfiguration(default_owner="id:0"),
      "beta": EndpointConfiguration(compression="lz4")}),
    ({"default_owner": "root", "default_group": "root"},
     {"endpoint": EndpointConfiguration(default_owner="root", default_group="root")}),
], ids=lambda value: str(value)[:60] if isinstance(value, dict) else None)
def test_flags_become_configuration(roots, options, expected):
    if expected is None:
        with pytest.raises(ArgumentError):
            create(roots, **options)
        return
    assert create(roots, **options).configuration == SyncConfiguration(**expected)


@pytest.mark.parametrize("labels, expected", [
    ([], {}),
    (["a=1"], {"a": "1"}),
    (["a=1,b", "c="], {"a": "1", "b": "", "c": ""}),
    (["example.com/team=web", "a=1", "a=2"], {"example.com/team": "web", "a": "2"}),
])
def test_labels_are_split_on_commas(roots, labels, expected):
    assert create(roots, labels=labels).labels == expected


def test_name_and_paused(roots):
    request = create(roots, name="web-app2", paused=True)
    assert (request.name, request.paused) == ("web-app2", True)


GLOBAL = """\
    sync:
      defaults:
        mode: one-way-safe
        hash: sha1
        ignore:
          paths: ["global"]
        watch:
          pollingInterval: 20
"""
FIRST = """\
    sync:
      defaults:
        mode: two-way-resolved
        maxStagingFileSize: "100 MB"
        ignore:
          paths: ["first,with,commas"]
          vcs: true
        configurationBeta:
          watch:
            mode: no-watch
"""
SECOND = """\
    sync:
      defaults:
        ignore:
          paths: ["second"]
        permissions:
          defaultFileMode: 0644
"""


def test_precedence_defaults_global_files_flags(roots, write):
    global_path = write("global.yml", GLOBAL)
    first, second = write("first.yml", FIRST), write("second.yml", SECOND)
    request = create(roots, global_path=global_path, configuration_files=[first, second],
                     ignores=["flag"], hash="sha256")
    assert request.configuration == SyncConfiguration(
        mode="two-way-resolved",  # first file over the global file
        hash="sha256",  # flag over the global file
        ignores=["global", "first,with,commas", "second", "flag"],  # concatenated, in order
        ignore_vcs=True,
        endpoint=EndpointConfiguration(watch_polling_interval=20, max_staging_file_size=100_000_000,
                                       default_file_mode=0o644),
        beta=EndpointConfiguration(watch_mode="no-watch"),
    )


def test_flag_beats_files_and_side_flag_beats_file_side(roots, write):
    first = write("first.yml", FIRST)
    request = create(roots, configuration_files=[first], mode="one-way-replica",
                     watch_mode_beta="portable", no_global_configuration=True)
    assert request.configuration.mode == "one-way-replica"
    assert request.configuration.beta.watch_mode == "portable"


def test_configuration_file_values_are_comma_split(roots, write):
    first, second = write("first.yml", FIRST), write("second.yml", SECOND)
    request = create(roots, configuration_files=[f"{first},{second}"])
    assert request.configuration.ignores == ["first,with,commas", "second"]


def test_no_global_configuration_skips_the_global_file(roots, write):
    global_path = write("global.yml", GLOBAL)
    alpha, beta = roots
    request = build_create({"alpha": alpha, "beta": beta, "no_global_configuration": True},
                           environment={}, global_path=global_path)
    assert request.configuration == SyncConfiguration()
    with_global = build_create({"alpha": alpha, "beta": beta}, environment={}, global_path=global_path)
    assert with_global.configuration.mode == "one-way-safe"


def test_missing_global_file_is_fine(roots, tmp_path):
    request = create(roots, global_path=str(tmp_path / "absent.yml"))
    assert request.configuration == SyncConfiguration()


def test_remote_urls_keep_their_form(roots):
    request = build_create({"alpha": "me@host:2222:~/project", "beta": "docker://app/var/www",
                            "no_global_configuration": True, "default_owner_beta": "www-data-remote"},
                           environment={"MUTAGEN_BETA_DOCKER_HOST": "unix:///x.sock"})
    assert (request.alpha.protocol, request.alpha.user, request.alpha.host, request.alpha.port,
            request.alpha.path) == ("ssh", "me", "host", 2222, "~/project")
    assert (request.beta.protocol, request.beta.host, request.beta.path,
            request.beta.environment) == ("docker", "app", "/var/www", {"DOCKER_HOST": "unix:///x.sock"})
    # owners on a remote side are resolved there, not looked up here
    assert request.configuration.beta.default_owner == "www-data-remote"


BAD_INPUT = [
    ({"mode": "bogus"}, "--mode: invalid synchronization mode 'bogus' (expected one of: two-way-safe, "
                        "two-way-resolved, one-way-safe, one-way-replica)"),
    ({"hash": "md5"}, "--hash: invalid hash algorithm 'md5' (expected one of: xxh128, sha1, sha256)"),
    ({"symlink_mode": "follow"}, "--symlink-mode: invalid symbolic link mode 'follow'"),
    ({"ignore_syntax": "git"}, "--ignore-syntax: invalid ignore syntax 'git'"),
    ({"permissions_mode": "all"}, "--permissions-mode: invalid permissions mode 'all'"),
    ({"watch_mode_beta": "fast"}, "--watch-mode-beta: invalid watch mode 'fast' (expected one of: "
                                  "portable, force-poll, no-watch)"),
    ({"scan_mode": "quick"}, "--scan-mode: invalid scan mode 'quick'"),
    ({"stage_mode_alpha": "tmp"}, "--stage-mode-alpha: invalid stage mode 'tmp'"),
    ({"probe_mode": "guess"}, "--probe-mode: invalid probe mode 'guess' (expected one of: probe, assume)"),
    ({"compression": "gzip"}, "--compression: invalid compression algorithm 'gzip'"),
    ({"compression_beta": "zstandard"},  # Mutagen's; not offered here
     "--compression-beta: invalid compression algorithm 'zstandard' (expected one of: none, lz4)"),
    ({"watch_polling_interval": "-1"}, "--watch-polling-interval: invalid watch polling interval '-1'"),
    ({"watch_polling_interval_alpha": "4294967296"}, "--watch-polling-interval-alpha: invalid"),
    ({"max_entry_count": "many"}, "--max-entry-count: invalid maximum entry count 'many'"),
    ({"max_staging_file_size": "10QB"}, "--max-staging-file-size: invalid size '10QB'"),
    ({"default_file_mode": "0855"}, "--default-file-mode: invalid default file mode '0855': expected an octal mode"),
    ({"default_directory_mode_beta": "rwx"}, "--default-directory-mode-beta: invalid default directory mode 'rwx'"),
    ({"default_file_mode": "01644"}, "--default-file-mode: invalid default file mode '01644': only permission bits"),
    ({"default_file_mode": "0755"}, "--default-file-mode: invalid default file mode 0755: it may not contain "
                                    "executable bits in portable permissions mode"),
    ({"default_file_mode_beta": "0700"}, "--default-file-mode-beta: invalid default file mode 0700"),
    ({"default_owner": "no-such-user-h8"}, "--default-owner: invalid default owner 'no-such-user-h8': no such user"),
    ({"default_group_alpha": "no-such-group-h8"}, "--default-group-alpha: invalid default group 'no-such-group-h8'"),
    ({"default_owner": "id:x"}, "--default-owner: invalid default owner 'id:x'"),
    ({"ignores": ["{a,b}"]}, "--ignore: invalid ignore pattern '{a'"),
    ({"ignores": ["ok", ""]}, "--ignore: invalid ignore pattern ''"),
    ({"ignore_vcs": True, "no_ignore_vcs": True}, "conflicting VCS ignore behavior specified"),
    ({"name": "1abc"}, "--name: invalid session name '1abc': it must start with a letter"),
    ({"name": "a_b"}, "--name: invalid session name 'a_b'"),
    ({"name": "defaults"}, "--name: invalid session name 'defaults'"),
    ({"name": "a0000000-0000-0000-0000-000000000000"}, "--name: invalid session name"),
    ({"labels": ["a b"]}, "--label: invalid label key 'a b'"),
    ({"labels": ["=v"]}, "--label: invalid label specification '=v': the key is empty"),
    ({"labels": ["k=bad value"]}, "--label: invalid label value 'bad value'"),
]


@pytest.mark.parametrize("options, message", BAD_INPUT, ids=[m.split(":")[0] for _, m in BAD_INPUT])
def test_bad_flags_name_the_flag(roots, options, message):
    with pytest.raises(ArgumentError) as failure:
        create(roots, **options)
    assert str(failure.value).startswith(message), str(failure.value)
    assert "\n" not in str(failure.value)


def test_bad_url_and_root_layouts(tmp_path):
    (tmp_path / "a" / "inner").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "a")
    a, inner, link = str(tmp_path / "a"), str(tmp_path / "a" / "inner"), str(tmp_path / "link")
    cases = [
        (("host:", a), "alpha: invalid URL 'host:': empty path"),
        ((a, "@host:/x"), "beta: invalid URL '@host:/x': empty username"),
        ((a, "host:70000:/x"), "beta: invalid URL 'host:70000:/x': port 70000 out of range"),
        ((a, "docker://"), "beta: invalid URL 'docker://': empty container name"),
        (("", a), "alpha: invalid URL '': empty URL"),
        ((a, a), f"alpha and beta are the same directory ({a})"),
        ((a, a + "/"), f"alpha and beta are the same directory ({a})"),
        ((a, link), f"alpha and beta are the same directory ({a})"),
        ((a, inner), f"beta ({inner}) is inside alpha ({a})"),
        ((inner, a), f"alpha ({inner}) is inside beta ({a})"),
        ((link + "/inner", a), f"alpha ({link}/inner) is inside beta ({a})"),
        (("h:/srv/x", "h:/srv/x"), "alpha and beta are the same location (h:/srv/x)"),
    ]
    for (alpha, beta), message in cases:
        with pytest.raises(ArgumentError) as failure:
            build_create({"alpha": alpha, "beta": beta, "no_global_configuration": True}, environment={})
        assert str(failure.value).startswith(message), (alpha, beta, str(failure.value))


def test_siblings_with_a_common_prefix_are_fine(tmp_path):
    request = build_create({"alpha": str(tmp_path / "app"), "beta": str(tmp_path / "app-copy"),
                            "no_global_configuration": True}, environment={})
    assert request.beta.path == str(tmp_path / "app-copy")


@pytest.mark.parametrize("text, message", [
    ("sync: [", "not valid YAML"),
    ("sync:\n  defaults:\n    mode: sideways\n", "sync.defaults.mode: invalid synchronization mode 'sideways'"),
    ("sync:\n  defaults:\n    colour: red\n", "sync.defaults.colour: unknown key"),
    ("sync:\n  defaults:\n    permissions:\n      defaultFileMode: 0755\n", "invalid default file mode 0755"),
    ("sync:\n  defaults:\n    ignore:\n      paths: ['{a']\n", "invalid ignore pattern '{a'"),
])
def test_bad_configuration_files_name_file_and_key(roots, write, text, message):
    path = write("bad.yml", text)
    with pytest.raises(ArgumentError) as failure:
        create(roots, configuration_files=[path])
    assert message in str(failure.value)
    if "YAML" in message or "sync.defaults" in message:
        assert path in str(failure.value)


def test_bad_global_file_is_an_error_unless_skipped(roots, write):
    global_path = write("global.yml", "sync: {defaults: {mode: sideways}}\n")
    with pytest.raises(ArgumentError, match="sync.defaults.mode"):
        create(roots, global_path=global_path)
    alpha, beta = roots
    build_create({"alpha": alpha, "beta": beta, "no_global_configuration": True},
                 environment={}, global_path=global_path)


def test_missing_configuration_file_is_an_error(roots, tmp_path):
    missing = str(tmp_path / "missing.yml")
    with pytest.raises(ArgumentError, match="no such file"):
        create(roots, configuration_files=[missing])


@pytest.mark.parametrize("specifications, selector, all_, default_all, expected", [
    ((), "", False, True, Selection(all=True)),
    (("a", "b"), "", False, False, Selection(specifications=["a", "b"])),
    ((), "k in (a,b),!x", False, False, Selection(label_selector="k in (a,b),!x")),
    ((), None, True, False, Selection(all=True)),
    ((), "", False, False, "no selection mechanisms present"),
    (("a",), "", True, False, "multiple selection mechanisms present"),
    (("a",), "k=v", False, True, "multiple selection mechanisms present"),
    ((), "k=v", True, False, "multiple selection mechanisms present"),
    ((), "k in", False, False, "--label-selector: invalid label selector 'k in'"),
    ((), "=v", False, True, "--label-selector: invalid label selector '=v'"),
])
def test_selection(specifications, selector, all_, default_all, expected):
    if isinstance(expected, str):
        with pytest.raises(ArgumentError) as failure:
            selection(specifications, selector, all_, default_all=default_all)
        assert str(failure.value).startswith(expected)
    else:
        assert selection(specifications, selector, all_, default_all=default_all) == expected
