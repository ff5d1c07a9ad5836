"""The Celery side of ``scripts/cluster up``: a private Redis (the broker) and the Airflow settings of
the CeleryExecutor.

Redis is Debian's ``redis-server`` (``scripts/setup`` installs it as root), run as a child process
of its own on a loopback port with its own folder (config, log), never the system service. It
asks for a password, which lives only in its config file (mode 600), never on a command line.

The broker's queue is kept in an append-only file (fsync every second), as a production broker
is: a restarted Redis still holds the task messages the workers have not taken, so a restart
loses no task (without it, a lost message waits for Airflow's ``task_queued_timeout``)."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from newsrag.cli import processes
from newsrag.core.errors import ServerError, SetupError

HOST = "127.0.0.1"


def find_redis_server() -> str:
    """The ``redis-server`` binary, or a SetupError saying how to install it."""
    found = shutil.which("redis-server")
    if found is None:
        raise SetupError("redis-server not found: run scripts/setup as root (it installs Debian's "
                         "redis-server package) or `apt-get install redis-server`")
    return found


class LocalRedis:
    """The Redis in ``root``: ``root/redis.conf``, ``root/server.log``; the pid is the caller's to keep."""

    def __init__(self, root: Path) -> None:
        self.root, self.config, self.log = root, root / "redis.conf", root / "server.log"

    def url(self, password: str, port: int, db: int = 0) -> str:
        """The broker URL Celery reads (the password in it: keep it out of logs)."""
        return f"redis://:{password}@{HOST}:{port}/{db}"

    def start(self, password: str, port: int, timeout: float = 30) -> int:
        """Start on 127.0.0.1:``port`` and wait until it answers PING; returns its pid."""
        binary = find_redis_server()
        self._write_config(password, port)
        pid = processes.spawn([binary, str(self.config)], dict(os.environ), self.root, self.log)
        deadline = time.monotonic() + timeout
        while not ping(port, password):
            if not processes.alive(pid) or time.monotonic() > deadline:
                processes.stop_session(pid)
                tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                raise ServerError(f"redis-server did not answer on {HOST}:{port}:\n{tail}")
            time.sleep(0.2)
        return pid

    def _write_config(self, password: str, port: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.unlink(missing_ok=True)
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f'bind {HOST}\nport {port}\nprotected-mode yes\ndaemonize no\ndir "{self.root}"\n'
                    f'save ""\nappendonly yes\nappendfsync everysec\nlogfile ""\nrequirepass "{password}"\n')


def ping(port: int, password: str) -> bool:
    """Whether a Redis on ``port`` accepts ``password`` and answers PING."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as conn:
            conn.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"PONG" not in reply and b"-" not in reply[:1]:
                chunk = conn.recv(256)
                if not chunk:
                    break
                reply += chunk
    except OSError:
        return False
    return reply.startswith(b"+OK") and b"+PONG" in reply


def celery_env(broker_url: str, result_backend: str) -> dict[str, str]:
    """The settings that turn a local Airflow into a CeleryExecutor one."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    }
