"""The agent bundle: this package's agent-side code plus the compiled dependencies for one remote
platform, as one ``tar.gz`` that the remote's own ``python3`` unpacks onto its ``sys.path``.

Contents (paths inside the archive):

- ``mutagen_actors/{wire,actors,agent}/**.py`` (no daemon or CLI code) and an empty
  ``mutagen_actors/__init__.py``; ``agent.py`` (runs ``mutagen_actors.agent.remote_main``);
- every file of each distribution in ``AGENT_DISTRIBUTIONS`` (packages, ``*.libs`` folders of
  vendored shared libraries, dist-info), without byte-code caches and scripts.

Wheels are zip archives that import as they are once unpacked into a directory on ``sys.path``,
so a dependency comes either from the local install, re-packed file by file from its RECORD,
when one of its wheel tags (``WHEEL``) is supported by the remote (``tag_supported``: same
CPython minor version or abi3, same machine, a manylinux level the remote's glibc satisfies, or
a pure ``any`` wheel), or else from ``pip download --only-binary=:all: --platform ...
--python-version ...`` for the remote's tags into ``<cache>/wheels`` (needs a package index
reachable from the daemon's machine, never from the remote).

``agent_identity()`` names an install: the release plus a digest of the agent code and the
dependency versions, so an edited checkout never reuses a stale agent. Bundles are built once
per identity and platform into ``<cache>/bundles`` (written under a temporary name, renamed;
bundles of other identities are deleted then).

Failure rules: ``BundleError`` with what was missing (a dependency not installed locally and not
downloadable for the remote's platform, with pip's last line).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass
from functools import lru_cache

from mutagen_actors.wire.version import VERSION

AGENT_SUBPACKAGES = ("wire", "actors", "agent")
AGENT_DISTRIBUTIONS = ("msgspec", "pyzmq", "xxhash", "pyfastcdc", "lz4", "structlog",
                       "inotify_simple", "google-re2", "watchdog",
                       "typing_extensions")  # the last: for 3.10
LAUNCHER = """\
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mutagen_actors.agent.remote_main import main
sys.exit(main(sys.argv[1:]))
"""
_OLDEST_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


class BundleError(RuntimeError):
    """The bundle for a remote platform cannot be made; the text says what is missing."""


@dataclass(frozen=True)
class RemotePlatform:
    """What the probe found (see ``agent.install.PROBE``)."""

    system: str  # platform.system(): Linux, Darwin, ...
    machine: str  # platform.machine(): x86_64, aarch64, ...
    python: tuple[int, int, int]
    implementation: str  # cpython, pypy, ...
    cache_tag: str  # cpython-311
    libc: str = ""  # glibc, musl (from platform.libc_ver(); "" when unknown)
    libc_version: str = ""
    home: str = ""

    @property
    def key(self) -> str:
        """Names the bundle built for this platform."""
        libc = f"{self.libc}{self.libc_version}" if self.libc else "nolibc"
        return f"{self.cache_tag}-{self.system.lower()}-{self.machine}-{libc}"

    def glibc(self) -> tuple[int, int] | None:
        if self.libc != "glibc":
            return None
        try:
            major, minor = self.libc_version.split(".")[:2]
            return int(major), int(minor)
        except ValueError:
            return None


def local_platform() -> RemotePlatform:
    import platform

    libc, version = platform.libc_ver()
    return RemotePlatform(platform.system(), platform.machine(), tuple(sys.version_info[:3]),
                          sys.implementation.name, sys.implementation.cache_tag, libc, version,
                          os.path.expanduser("~"))


# ---------------------------------------------------------------------------- tags (pure)


def tag_supported(tag: str, remote: RemotePlatform) -> bool:
    """Whether a wheel tag ``interpreter-abi-platform`` (one of its expansions) runs on
    ``remote``."""
    try:
        interpreter, abi, plat = tag.split("-")
    except ValueError:
        return False
    major, minor = remote.python[:2]
    cp = f"cp{major}{minor}"
    if remote.implementation == "cpython":
        if interpreter.startswith("cp"):
            try:
                wanted = int(interpreter[3:]) if interpreter[2:3] == str(major) else -1
            except ValueError:
                return False
            if abi == "abi3":
                if interpreter[2:3] != str(major) or wanted > minor:
                    return False
            elif interpreter != cp:
                return False
        elif interpreter not in ("py3", f"py{major}{minor}", f"py{major}"):
            return False
    elif interpreter not in ("py3", f"py{major}"):
        return False
    if abi not in ("none", "abi3", cp):
        return False
    if abi == "abi3" and remote.implementation != "cpython":
        return False
    return platform_supported(plat, remote)


def wheel_supported(filename: str, remote: RemotePlatform) -> bool:
    """Whether any tag of a wheel file name (``name-version[-build]-py-abi-platform.whl``, each
    part possibly a ``.``-separated set) runs on ``remote`` (pure)."""
    parts = filename[:-len(".whl")].split("-") if filename.endswith(".whl") else []
    if len(parts) < 5:
        return False
    interpreters, abis, platforms = (p.split(".") for p in parts[-3:])
    return any(tag_supported(f"{i}-{a}-{p}", remote)
               for i in interpreters for a in abis for p in platforms)


def platform_supported(plat: str, remote: RemotePlatform) -> bool:
    if plat == "any":
        return True
    if remote.system != "Linux":
        return False  # only Linux remotes take compiled wheels from here for now
    for name, level in _OLDEST_MANYLINUX.items():
        if plat == f"{name}_{remote.machine}":
            glibc = remote.glibc()
            return glibc is not None and glibc >= level
    for family, libc in (("manylinux_", "glibc"), ("musllinux_", "musl")):
        if plat.startswith(family) and plat.endswith("_" + remote.machine):
            parts = plat[len(family):-len(remote.machine) - 1].split("_")
            if len(parts) != 2 or not all(p.isdigit() for p in parts) or remote.libc != libc:
                return False
            if libc == "glibc":
                glibc = remote.glibc()
                return glibc is not None and glibc >= (int(parts[0]), int(parts[1]))
            return True  # musl versions are not reported by libc_ver; assume current
    return False


def pip_platforms(remote: RemotePlatform) -> list[str]:
    """``--platform`` values for ``pip download`` (newest first; pure)."""
    glibc = remote.glibc()
    if remote.system != "Linux" or glibc is None:
        raise BundleError(f"no compiled dependencies can be fetched for {remote.system} "
                          f"{remote.machine} with libc {remote.libc or 'unknown'} "
                          f"(only glibc Linux remotes are supported)")
    major, minor = glibc
    platforms = [f"manylinux_{major}_{m}_{remote.machine}" for m in range(minor, 4, -1)]
    return platforms + [f"manylinux2014_{remote.machine}", f"manylinux2010_{remote.machine}",
                        f"manylinux1_{remote.machine}"]


# ---------------------------------------------------------------------------------- contents


def _package_directory(subpackage: str) -> str:
    module = importlib.import_module(f"mutagen_actors.{subpackage}")
    return list(module.__path__)[0]


def _agent_sources() -> list[tuple[str, str]]:
    """(archive name, local path) of the agent-side code, sorted."""
    found = []
    for sub in AGENT_SUBPACKAGES:
        top = _package_directory(sub)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__")))
            for name in sorted(filenames):
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    found.append((f"mutagen_actors/{sub}/{os.path.relpath(path, top)}", path))
    return sorted(found)


def _distribution(name: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise BundleError(f"the agent needs {name}, which is not installed here") from None


def identity_of(sources: list[tuple[str, bytes]], versions: list[tuple[str, str]]) -> str:
    """The identity of agent code ``(archive name, content)`` with dependency ``(name,
    version)`` pairs (pure)."""
    digest = hashlib.sha256()
    for arcname, content in sources:
        digest.update(arcname.encode() + b"\0")
        digest.update(hashlib.sha256(content).digest())
    for name, version in versions:
        digest.update(f"{name}=={version}\0".encode())
    digest.update(LAUNCHER.encode())
    return f"{VERSION}-{digest.hexdigest()[:12]}"


def _read_sources() -> list[tuple[str, bytes]]:
    found = []
    for arcname, path in _agent_sources():
        with open(path, "rb") as handle:
            found.append((arcname, handle.read()))
    return found


def _versions() -> list[tuple[str, str]]:
    return [(name, _distribution(name).version) for name in AGENT_DISTRIBUTIONS]


@lru_cache(maxsize=1)
def agent_identity() -> str:
    """``<release>-<12 hex digits>``: changes with any agent source file or dependency version.
    Computed once per process (the code this process runs and installs)."""
    return identity_of(_read_sources(), _versions())


def check_snapshot(sources: list[tuple[str, bytes]], versions: list[tuple[str, str]],
                   expected: str) -> None:
    """``BundleError`` unless the files about to be bundled are the code named ``expected``
    (pure): a bundle of edited sources installed under the old name would run other code than
    this process, and their messages might not decode on either side."""
    found = identity_of(sources, versions)
    if found != expected:
        raise BundleError(f"the agent's source files changed since this process started (they "
                          f"are {found} now, this process runs {expected}); restart the daemon "
                          f"(mutagen-actors daemon stop) to install the current agent")


def _wheel_tags(dist: importlib.metadata.Distribution) -> list[str]:
    text = dist.read_text("WHEEL") or ""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def _installed_files(dist) -> list[tuple[str, str]]:
    files = []
    for entry in dist.files or ():
        name = str(entry).replace(os.sep, "/")
        if name.startswith("../") or "/__pycache__/" in f"/{name}" or name.endswith(".pyc"):
            continue
        path = str(dist.locate_file(entry))
        if os.path.isfile(path):
            files.append((name, path))
    return files


def _downloaded_wheel(name: str, version: str, remote: RemotePlatform, wheels: str) -> str:
    os.makedirs(wheels, exist_ok=True)
    major, minor = remote.python[:2]
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--python-version", f"{major}.{minor}",
            "--implementation", "cp", "--abi", f"cp{major}{minor}", "--abi", "abi3",
            "--abi", "none", "-d", wheels]
    for plat in pip_platforms(remote):
        argv += ["--platform", plat]
    argv.append(f"{name}=={version}")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise BundleError(f"no {name} {version} wheel for the remote ({remote.key}): {last}")
    prefix = name.replace("-", "_").lower() + "-" + version + "-"
    for file in sorted(os.listdir(wheels)):
        if file.lower().startswith(prefix) and file.endswith(".whl") and \
                wheel_supported(file, remote):
            return os.path.join(wheels, file)  # the cache holds wheels for other remotes too
    raise BundleError(f"pip downloaded no usable {name} {version} wheel for {remote.key}")


def _add_file(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = int(time.time())
    archive.addfile(info, io.BytesIO(data))


def build_bundle(remote: RemotePlatform, cache_directory: str, *, progress=None) -> str:
    """Path of the bundle for ``remote`` (built into ``cache_directory`` unless already there)."""
    bundles = os.path.join(cache_directory, "bundles")
    os.makedirs(bundles, mode=0o700, exist_ok=True)
    path = os.path.join(bundles, f"{agent_identity()}-{remote.key}.tar.gz")
    if os.path.exists(path):
        return path
    for name in os.listdir(bundles):  # bundles of other agent versions are never used again
        if name.endswith(".tar.gz") and not name.startswith(agent_identity() + "-"):
            os.unlink(os.path.join(bundles, name))
    if progress:
        progress("Preparing agent bundle...")
    sources = _read_sources()  # bundled exactly as read and checked
    check_snapshot(sources, _versions(), agent_identity())
    handle, temporary = tempfile.mkstemp(prefix=".bundle-", dir=bundles)
    os.close(handle)
    try:
        with tarfile.open(temporary, "w:gz", compresslevel=6) as archive:
            _add_file(archive, "mutagen_actors/__init__.py", b"")
            _add_file(archive, "agent.py", LAUNCHER.encode())
            for arcname, content in sources:
                _add_file(archive, arcname, content)
            for name in AGENT_DISTRIBUTIONS:
                dist = _distribution(name)
                if any(tag_supported(tag, remote) for tag in _wheel_tags(dist)):
                    for arcname, local in _installed_files(dist):
                        archive.add(local, arcname, recursive=False)
                    continue
                wheel = _downloaded_wheel(name, dist.version, remote,
                                          os.path.join(cache_directory, "wheels"))
                with zipfile.ZipFile(wheel) as archive_in:
                    for member in archive_in.infolist():
                        if member.is_dir() or ".data/" in member.filename:
                            continue
                        mode = (member.external_attr >> 16) & 0o777 or 0o644
                        _add_file(archive, member.filename, archive_in.read(member), mode)
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    return path
