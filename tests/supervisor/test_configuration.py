"""Configuration files, merge precedence and per-side overrides (reference §1.1 and §13)."""

from __future__ import annotations

import textwrap

import pytest

from mutagen_actors.actors.sync.settings import (
    HashAlgorithm,
    IgnoreSyntax,
    Mode,
    PermissionsMode,
    ScanMode,
    StageMode,
    SymlinkMode,
    WatchMode,
)
from mutagen_actors.supervisor.configuration import (
    SYNC_DEFAULTS,
    EndpointConfiguration,
    ForwardConfiguration,
    SocketConfiguration,
    SyncConfiguration,
    forward_configuration,
    merge_sync,
    parse_configuration,
    parse_size,
    split_flag_values,
    sync_configuration,
    validate_sync,
    vcs_flag,
)

FULL = """
sync:
  defaults:
    mode: two-way-resolved
    hash: sha256
    maxEntryCount: 500000
    maxStagingFileSize: "100 MB"
    probeMode: assume
    scanMode: full
    stageMode: neighboring
    ignore:
      syntax: docker
      paths: [".DS_Store", "node_modules/", "*.pyc"]
      vcs: true
    symlink:
      mode: posix-raw
    watch:
      mode: force-poll
      pollingInterval: 5
    permissions:
      mode: manual
      defaultFileMode: 0644
      defaultDirectoryMode: 0755
      defaultOwner: "id:1000"
      defaultGroup: "staff"
    compression:
      algorithm: none
    configurationBeta:
      permissions:
        defaultOwner: "id:33"
      watch:
        mode: no-watch
forward:
  defaults:
    socket:
      overwriteMode: overwrite
      owner: me
      group: id:20
      permissionMode: 0660
    configurationSource:
      socket:
        permissionMode: 0600
"""


def test_the_reference_file_parses_completely():
    configuration = parse_configuration(FULL, "full.yml")
    sync = configuration.sync
    assert (sync.mode, sync.hash, sync.symlink_mode, sync.ignore_syntax, sync.ignore_vcs, sync.permissions_mode) == (
        Mode.TWO_WAY_RESOLVED, HashAlgorithm.SHA256, SymlinkMode.POSIX_RAW, IgnoreSyntax.DOCKER, True,
        PermissionsMode.MANUAL,
    )
    assert sync.ignores == (".DS_Store", "node_modules/", "*.pyc")
    assert sync.common == EndpointConfiguration(
        probe_mode="assume", scan_mode=ScanMode.FULL, stage_mode=StageMode.NEIGHBORING,
        watch_mode=WatchMode.FORCE_POLL, watch_polling_interval=5, default_file_mode=0o644,
        default_directory_mode=0o755, default_owner="id:1000", default_group="staff", compression="none",
        max_entry_count=500000, max_staging_file_size=100_000_000,
    )
    assert sync.endpoint("alpha") == sync.common
    beta = sync.endpoint("beta")
    assert (beta.default_owner, beta.watch_mode, beta.default_group) == ("id:33", WatchMode.NO_WATCH, "staff")
    forward = configuration.forward
    assert forward.endpoint("source") == SocketConfiguration("overwrite", "me", "id:20", 0o600)
    assert forward.endpoint("destination") == SocketConfiguration("overwrite", "me", "id:20", 0o660)


@pytest.mark.parametrize("text", ["", "# nothing\n", "sync:\n", "sync:\n  defaults:\n", "forward: {defaults: {}}"])
def test_empty_documents_are_empty_configurations(text):
    configuration = parse_configuration(text)
    assert configuration.sync == SyncConfiguration() and configuration.forward == ForwardConfiguration()


@pytest.mark.parametrize(
    "written, mode",
    [("0644", 0o644), ("644", 0o644), ('"0644"', 0o644), ("0o644", 0o644), ("0600", 0o600), ("755", 0o755),
     ("0", None), ("'0'", None)],
)
def test_modes_are_octal_however_written(written, mode):
    text = f"sync: {{defaults: {{permissions: {{mode: manual, defaultDirectoryMode: {written}}}}}}}"
    assert parse_configuration(text).sync.common.default_directory_mode == mode


@pytest.mark.parametrize(
    "text, size",
    [("4096", 4096), ("100 MB", 100_000_000), ("100MB", 100_000_000), ("1 GiB", 2**30), ("1.5 GB", 1_500_000_000),
     ("10k", 10_000), ("10 KiB", 10_240), ("2 mib", 2 * 2**20), ("7 B", 7), ("0", 0), (".5 KiB", 512), ("1 EiB", 2**60)],
)
def test_human_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "-1 MB", "1 XB", "1.2.3 MB", "10 M B", "16 EiB", "1e6"])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


# (yaml, message fragments: file name, key, problem)
INVALID = [
    ("sync: {defaults: {mode: fast}}", "sync.defaults.mode: invalid synchronization mode 'fast'"),
    ("sync: {defaults: {hash: md5}}", "sync.defaults.hash: invalid hash algorithm 'md5'"),
    ("sync: {defaults: {ignore: {pathz: []}}}", "sync.defaults.ignore.pathz: unknown key"),
    ("sync: {defaults: {ignore: {paths: '*.pyc'}}}", "sync.defaults.ignore.paths: expected a list"),
    ("sync: {defaults: {ignore: {paths: [1]}}}", "sync.defaults.ignore.paths: expected a list"),
    ("sync: {defaults: {ignore: {vcs: maybe}}}", "sync.defaults.ignore.vcs: invalid VCS ignore setting 'maybe'"),
    ("sync: {defaults: {ignore: [a]}}", "sync.defaults.ignore: expected a mapping"),
    ("sync: {defaults: {maxEntryCount: -1}}", "sync.defaults.maxEntryCount: invalid maximum entry count -1"),
    ("sync: {defaults: {maxEntryCount: lots}}", "sync.defaults.maxEntryCount: invalid maximum entry count 'lots'"),
    ("sync: {defaults: {maxStagingFileSize: 10 XB}}", "sync.defaults.maxStagingFileSize: invalid size '10 XB'"),
    ("sync: {defaults: {watch: {pollingInterval: 5000000000}}}", "sync.defaults.watch.pollingInterval"),
    ("sync: {defaults: {watch: {mode: inotify}}}", "sync.defaults.watch.mode: invalid watch mode 'inotify'"),
    ("sync: {defaults: {permissions: {defaultFileMode: 0648}}}", "sync.defaults.permissions.defaultFileMode"),
    ("sync: {defaults: {permissions: {defaultFileMode: 01644}}}", "at most 0777"),
    ("sync: {defaults: {permissions: {defaultOwner: 1000}}}", "write a numeric id as 'id:1000'"),
    ("sync: {defaults: {permissions: {defaultGroup: 'id:x'}}}", "sync.defaults.permissions.defaultGroup"),
    ("sync: {defaults: {compression: {algorithm: gzip}}}", "sync.defaults.compression.algorithm"),
    ("sync: {defaults: {probeMode: guess}}", "sync.defaults.probeMode: invalid probe mode 'guess'"),
    ("sync: {defaults: {configurationAlpha: {mode: one-way-safe}}}", "sync.defaults.configurationAlpha.mode: unknown key"),
    ("sync: {defaults: {configurationBeta: {ignore: {paths: [x]}}}}", "sync.defaults.configurationBeta.ignore: unknown key"),
    ("sync: {sessions: {}}", "sync.sessions: unknown key"),
    ("sync: [1]", "sync: expected a mapping"),
    ("synk: {}", "synk: unknown key"),
    ("- a\n- b", "top level: expected a mapping"),
    ("forward: {defaults: {socket: {overwriteMode: replace}}}", "forward.defaults.socket.overwriteMode"),
    ("forward: {defaults: {socket: {permissionMode: 9}}}", "forward.defaults.socket.permissionMode"),
    ("forward: {defaults: {configurationSource: {socket: {x: 1}}}}", "forward.defaults.configurationSource.socket.x"),
    ("sync: {defaults: {mode: [}", "not valid YAML"),
]


@pytest.mark.parametrize("text, message", INVALID)
def test_invalid_files_name_the_file_and_the_key(text, message):
    with pytest.raises(ValueError) as caught:
        parse_configuration(text, "/home/u/.mutagen-actors.yml")
    assert str(caught.value).startswith("invalid configuration file '/home/u/.mutagen-actors.yml': ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_precedence_global_then_files_in_order_then_flags(tmp_path):
    global_path = write(tmp_path, "global.yml", """
        sync:
          defaults:
            mode: one-way-safe
            hash: sha1
            ignore: {paths: [g1, g2], vcs: true}
            watch: {pollingInterval: 30}
            maxStagingFileSize: 1 GiB
    """)
    first = write(tmp_path, "first.yml", """
        sync:
          defaults:
            hash: sha256
            ignore: {paths: [f1]}
            watch: {pollingInterval: 20}
    """)
    second = write(tmp_path, "second.yml", """
        sync:
          defaults:
            ignore: {paths: [s1], vcs: false}
            watch: {pollingInterval: 0}
            configurationBeta: {watch: {pollingInterval: 3}}
    """)
    flags = SyncConfiguration(mode=Mode.TWO_WAY_RESOLVED, ignores=("c1", "c2"),
                              alpha=EndpointConfiguration(watch_polling_interval=1))
    merged = sync_configuration(flags, [first, second], global_path=global_path)
    assert merged.mode == Mode.TWO_WAY_RESOLVED  # flag beats everything
    assert merged.hash == HashAlgorithm.SHA256  # later file beats global
    assert merged.ignores == ("g1", "g2", "f1", "s1", "c1", "c2")  # concatenated, lowest first
    assert merged.ignore_vcs is False  # an explicit false overrides true
    assert merged.common.watch_polling_interval == 20  # 0 does not override
    assert merged.endpoint("alpha").watch_polling_interval == 1
    assert merged.endpoint("beta").watch_polling_interval == 3
    assert merged.common.max_staging_file_size == 2**30


def test_no_global_configuration_skips_the_global_file(tmp_path):
    global_path = write(tmp_path, "global.yml", "sync: {defaults: {mode: one-way-replica, ignore: {paths: [g]}}}")
    merged = sync_configuration(SyncConfiguration(), [], use_global=False, global_path=global_path)
    assert merged.mode is None and merged.ignores == ()


def test_missing_global_file_is_fine_but_a_missing_c_file_is_an_error(tmp_path):
    missing = str(tmp_path / "nope.yml")
    assert sync_configuration(SyncConfiguration(), [], global_path=missing) == SyncConfiguration()
    with pytest.raises(ValueError, match=f"invalid configuration file '{missing}': no such file"):
        sync_configuration(SyncConfiguration(), [missing], global_path=str(tmp_path / "also-missing.yml"))


def test_an_invalid_global_file_is_an_error(tmp_path):
    global_path = write(tmp_path, "global.yml", "sync: {defaults: {mode: sideways}}")
    with pytest.raises(ValueError, match="global.yml': sync.defaults.mode"):
        sync_configuration(SyncConfiguration(), [], global_path=global_path)


def test_c_files_contribute_only_their_sync_part_to_sync_sessions(tmp_path):
    path = write(tmp_path, "c.yml", "forward: {defaults: {socket: {overwriteMode: overwrite}}}")
    assert sync_configuration(SyncConfiguration(), [path], use_global=False) == SyncConfiguration()
    forward = forward_configuration(ForwardConfiguration(), [path], use_global=False)
    assert forward.endpoint("source").overwrite_mode == "overwrite"


def test_forward_flags_win_and_sides_override(tmp_path):
    path = write(tmp_path, "c.yml", "forward: {defaults: {socket: {owner: a, permissionMode: 0644}}}")
    flags = ForwardConfiguration(common=SocketConfiguration(owner="b"),
                                 destination=SocketConfiguration(permission_mode=0o600))
    forward = forward_configuration(flags, [path], use_global=False)
    assert forward.endpoint("source") == SocketConfiguration(None, "b", None, 0o644)
    assert forward.endpoint("destination") == SocketConfiguration(None, "b", None, 0o600)


@pytest.mark.parametrize(
    "configuration, message",
    [
        (SyncConfiguration(common=EndpointConfiguration(default_file_mode=0o755)),
         "invalid configuration for alpha: invalid default file mode 0755: it may not contain executable bits"),
        (SyncConfiguration(beta=EndpointConfiguration(default_file_mode=0o700)), "invalid configuration for beta"),
        (SyncConfiguration(ignores=("ok", "!")), "invalid ignore pattern '!'"),
        (SyncConfiguration(ignore_syntax=IgnoreSyntax.DOCKER, ignores=("a\\b",)), "invalid ignore pattern 'a\\\\b'"),
    ],
)
def test_merged_configuration_is_validated(configuration, message):
    with pytest.raises(ValueError) as caught:
        validate_sync(configuration)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "configuration",
    [
        SyncConfiguration(permissions_mode=PermissionsMode.MANUAL, common=EndpointConfiguration(default_file_mode=0o755)),
        SyncConfiguration(ignores=("*.pyc", "!keep.pyc")),
        SyncConfiguration(ignore_syntax=IgnoreSyntax.DOCKER, ignores=("**/*.o",)),
    ],
)
def test_valid_merged_configurations(configuration):
    validate_sync(configuration)


def test_defaults_resolve_unset_settings():
    resolved = merge_sync(SYNC_DEFAULTS, SyncConfiguration(hash=HashAlgorithm.SHA1))
    assert resolved.mode == Mode.TWO_WAY_SAFE and resolved.hash == HashAlgorithm.SHA1
    beta = resolved.endpoint("beta")
    assert (beta.default_file_mode, beta.default_directory_mode, beta.watch_polling_interval) == (0o600, 0o700, 10)


@pytest.mark.parametrize(
    "values, split",
    [([], ()), (["a"], ("a",)), (["a,b", "c"], ("a", "b", "c")), (["{a,b}"], ("{a", "b}"))],
)
def test_flag_values_split_on_commas_like_pflag(values, split):
    assert split_flag_values(values) == split


@pytest.mark.parametrize("ignore, no_ignore, setting", [(False, False, None), (True, False, True), (False, True, False)])
def test_vcs_flags(ignore, no_ignore, setting):
    assert vcs_flag(ignore, no_ignore) is setting


def test_both_vcs_flags_conflict():
    with pytest.raises(ValueError, match="conflicting VCS ignore behavior specified"):
        vcs_flag(True, True)
