"""Shared test fixtures and hooks.

Each test item gets ``rep_setup`` / ``rep_call`` / ``rep_teardown`` attributes (its phase
reports), so a fixture's teardown can tell whether the test failed and keep what explains it
(see ``keep_log_on_failure``)."""

from __future__ import annotations

import os
import re
import shutil

import pytest

FAILED_LOGS = os.environ.get("MUTAGEN_ACTORS_FAILED_LOGS", "/tmp/mutagen-actors-failed-logs")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def test_failed(item) -> bool:
    return any(getattr(getattr(item, f"rep_{when}", None), "failed", False)
               for when in ("setup", "call"))


def keep_log_on_failure(item, log_path: str) -> str | None:
    """Copy ``log_path`` to ``FAILED_LOGS`` when ``item`` failed (before its data directory is
    removed); returns the copy's path (None when the test passed or there is no log)."""
    if not test_failed(item) or not os.path.exists(log_path):
        return None
    os.makedirs(FAILED_LOGS, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-150:]
    target = os.path.join(FAILED_LOGS, f"{os.getpid()}-{name}.log")
    shutil.copyfile(log_path, target)
    print(f"\ndaemon log of the failed test kept in {target}")
    return target


def append_file(source: str, target: str, title: str) -> None:
    """Append ``source`` (if it exists) to ``target`` under a ``title`` line."""
    if os.path.exists(source) and target:
        with open(source) as stream, open(target, "a") as out:
            out.write(f"\n===== {title} =====\n{stream.read()}")
