"""What a phase cost the machine: wall time, this process's CPU, a server's CPU, and the CPU every
other process used meanwhile. On a shared machine that last figure is the difference between a
measurement and noise, so every bench script reports it beside its timings."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of ``pid`` read from /proc (nan if unreadable)."""
    if pid is None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def peak_rss_mib(pid: int | None = None) -> float | None:
    """Peak resident memory in MiB (one decimal) of this process, or of ``pid`` (None if unreadable)."""
    if pid is None:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, IndexError, ValueError):
        return None
    return None


def system_busy_seconds() -> float:
    """CPU time all processes on the machine have used (all cores, from /proc/stat; nan if unreadable)."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, IndexError, ValueError):
        return float("nan")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, two decimals."""
    return [round(x, 2) for x in os.getloadavg()]


def load_average_text() -> str:
    """The load averages as /proc/loadavg writes them ("0.81 0.67 0.88"), or "unknown"."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


@dataclass(frozen=True)
class UsageSample:
    wall_s: float
    cpu_s: float  # this process
    server_cpu_s: float  # the server's process (0 without one)
    other_cores: float  # average cores busy in all other processes
    loadavg_start: list[float]
    loadavg_end: list[float]


class Usage:
    """Started when made; :meth:`done` measures the phase since then. ``server_pid`` is a server
    whose CPU is counted apart from everybody else's (weaviate-server)."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self._wall, self._cpu, self._server = time.perf_counter(), cpu_seconds(), self._server_cpu()
        self._busy, self._load = system_busy_seconds(), load_average()

    def _server_cpu(self) -> float:
        return cpu_seconds(self.server_pid) if self.server_pid else 0.0

    def done(self) -> UsageSample:
        wall = time.perf_counter() - self._wall
        ours, server = cpu_seconds() - self._cpu, self._server_cpu() - self._server
        other = max(0.0, system_busy_seconds() - self._busy - ours - server)
        return UsageSample(wall_s=wall, cpu_s=ours, server_cpu_s=server,
                           other_cores=other / wall if wall else 0.0,
                           loadavg_start=self._load, loadavg_end=load_average())
