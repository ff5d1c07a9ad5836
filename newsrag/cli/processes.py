"""Background processes that outlive the command that started them, found again by pid.

Each one leads a session of its own (``start_new_session``), so everything it spawns (Airflow's
task runners, uvicorn workers) shares its session id, even the children that move to a process
group of their own. Stopping a process stops its whole session. Linux only: reads /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def spawn(command: list[str], env: dict[str, str], cwd: Path, log_file: Path) -> int:
    """Start ``command`` in a new session with stdout and stderr appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    proc.returncode = 0  # detached on purpose: it outlives this process and is stopped by pid
    return proc.pid


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, session id) of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[3])


def alive(pid: int | None) -> bool:
    """Whether the process runs (a zombie has exited)."""
    stat = _stat(pid) if pid else None
    return stat is not None and stat[0] not in ("Z", "X")


def session_members(sid: int) -> list[int]:
    """Every live process of the session ``sid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[1] == sid and stat[0] not in "ZX":
            members.append(int(entry.name))
    return members


def stop_sessions(sids: list[int], timeout: float = 30.0) -> list[int]:
    """SIGTERM every process of these sessions at once (they shut down side by side), then SIGKILL
    what is left after ``timeout`` seconds. Returns the sessions that were running."""
    running = [sid for sid in sids if session_members(sid)]
    members = [pid for sid in running for pid in session_members(sid)]
    _signal(members, signal.SIGTERM)
    if not _wait_gone(running, members, timeout):
        _signal([pid for sid in running for pid in session_members(sid)], signal.SIGKILL)
        _wait_gone(running, members, 10.0)
    return running


def stop_session(sid: int, timeout: float = 30.0) -> bool:
    """:func:`stop_sessions` for one session; whether it was running."""
    return bool(stop_sessions([sid], timeout))


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait_gone(sids: list[int], members: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in members:  # a member that is our own child stays a zombie until reaped
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        if not any(session_members(sid) for sid in sids):
            return True
        time.sleep(0.2)
    return False


def boot_id() -> str:
    """Changes at every boot: pids recorded before a reboot mean nothing."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
