"""``kill -USR1 <daemon pid>`` writes what the daemon is doing (thread stacks to
``daemon/stacks.txt``, asyncio task stacks to the log) and changes nothing else."""

import os


def test_usr1_dumps_thread_and_task_stacks_and_the_daemon_keeps_serving(daemon):
    pid = daemon.start()
    assert daemon.dump_stacks()
    tasks = [line for line in daemon.log_lines() if line.get("event") == "task stack"]
    assert any("daemon.py" in line["stack"] and " in run" in line["stack"] for line in tasks)
    with open(os.path.join(daemon.data_dir, "daemon", "stacks.txt")) as stream:
        threads = stream.read()
    assert "Current thread" in threads or "Thread 0x" in threads
    assert "daemon.py" in threads or "base_events.py" in threads
    assert daemon.status()["pid"] == pid  # still the same daemon, still answering
