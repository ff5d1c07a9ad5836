"""newsrag.cli.supervise, the loopback cluster's restart policy: a command that exits is started
again (the scheduler after a PostgreSQL restart), SIGTERM stops both without a restart, and a
crash loop ends with the command's exit code."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsrag.cli import processes

pytestmark = pytest.mark.unit

# Counts its starts in a file; the first two exit 3, the third runs until it is stopped.
FLAKY = """
import pathlib, sys, time
starts = pathlib.Path(sys.argv[1])
n = int(starts.read_text() or 0) + 1 if starts.exists() else 1
starts.write_text(str(n))
if n < 3:
    sys.exit(3)
time.sleep(600)
"""


def supervise(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "newsrag.cli.supervise", *args], stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def test_a_command_that_exits_is_started_again_and_sigterm_stops_both(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    proc = supervise("--", sys.executable, "-c", FLAKY, str(starts))
    deadline = time.monotonic() + 30
    while not (starts.exists() and starts.read_text() == "3") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert starts.read_text() == "3"  # exits at 1 and 2, then 1 s and 2 s later it was started again
    time.sleep(0.5)
    [child] = [pid for pid in processes.session_members(proc.pid) if pid != proc.pid]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == -signal.SIGTERM  # the command's own code, passed on
    assert not processes.alive(child) and starts.read_text() == "3"  # not started a fourth time
    assert proc.stderr is not None
    log = proc.stderr.read()
    assert log.count("exited with code 3: starting it again") == 2, log


def test_a_crash_loop_ends_with_the_commands_exit_code() -> None:
    proc = supervise("--max-restarts", "1", "--window", "60", "--", sys.executable, "-c", "raise SystemExit(7)")
    assert proc.wait(timeout=20) == 7
    assert proc.stderr is not None and "exited 2 times within 60 s (last code 7): giving up" in proc.stderr.read()


def test_no_command_is_a_usage_error() -> None:
    proc = supervise("--")
    assert proc.wait(timeout=20) == 2
    assert proc.stderr is not None and "no command to supervise" in proc.stderr.read()
