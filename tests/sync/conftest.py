"""Fixtures shared by the sync-core tests."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from mutagen_actors.actors.sync.settings import HashAlgorithm
from mutagen_actors.actors.sync.staging import Staging


@pytest.fixture
def bind_mounted(tmp_path):
    """(root, staging): the root a bind mount of a directory on the staging's filesystem, so a
    rename between them fails with EXDEV although both report the same device."""
    source, root = tmp_path / "source", tmp_path / "root"
    source.mkdir()
    root.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root to bind-mount")
    done = subprocess.run(["mount", "--bind", str(source), str(root)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"bind mount not possible here: {done.stderr.decode().strip()}")
    try:
        yield str(root), Staging(str(tmp_path / "staging"), HashAlgorithm.XXH128)
    finally:
        subprocess.run(["umount", str(root)], check=True, timeout=30)
