"""Fixtures for the forwarding tests."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from .servers import ForwardHarness


@pytest.fixture
def forwards():
    harness = ForwardHarness()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def short_dir():
    """A private directory with a short path (unix socket paths must stay under 108 bytes)."""
    path = tempfile.mkdtemp(prefix="fwd-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

