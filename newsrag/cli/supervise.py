"""A restart policy for the loopback cluster's components, as compose's ``restart: unless-stopped``
or a Kubernetes Deployment gives them in production:

    python -m newsrag.cli.supervise [--max-restarts N] [--window S] -- COMMAND...

It runs COMMAND and starts it again whenever it exits, except on SIGTERM or SIGINT, which it
passes on and then exits with the command's code. Airflow's scheduler, dag-processor and
triggerer exit when their metadata database goes away (a PostgreSQL restart): this brings them
back once it answers again. More than N exits within S seconds (a crash loop) ends it with the
command's last exit code, so a component that cannot start shows as stopped. The delay between
starts doubles from 1 s up to 30 s. It runs in the component's session: stopping the session
stops it and the command together."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType


class Supervisor:
    def __init__(self, command: list[str], max_restarts: int, window: float) -> None:
        self.command, self.max_restarts, self.window = command, max_restarts, window
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()  # also ends the wait between two starts at once
        self.exits: list[float] = []

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        while True:
            self.child = subprocess.Popen(self.command)
            code = self.child.wait()
            if self.stopping.is_set():
                return code
            now = time.monotonic()
            self.exits = [t for t in self.exits if now - t < self.window] + [now]
            if len(self.exits) > self.max_restarts:
                say(f"{self.command[0]} exited {len(self.exits)} times within {self.window:.0f} s "
                    f"(last code {code}): giving up")
                return code
            delay = min(30.0, 2.0 ** (len(self.exits) - 1))
            say(f"{' '.join(self.command[:3])} exited with code {code}: starting it again in {delay:.0f} s")
            if self.stopping.wait(delay):
                return code


def say(line: str) -> None:
    print(f"[supervise] {line}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newsrag.cli.supervise")
    parser.add_argument("--max-restarts", type=int, default=5)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise (put it after --)")
    supervisor = Supervisor(command, args.max_restarts, args.window)
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    code = supervisor.run()
    if code < 0:  # the command died of a signal: so does the supervisor, as the command would have
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
