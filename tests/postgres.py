"""A private throwaway PostgreSQL cluster for the tests (the fixtures are in tests/conftest.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

DEBIAN_LIB = Path("/usr/lib/postgresql")


def find_bindir(lib: Path = DEBIAN_LIB) -> Path | None:
    """The newest installed server's binaries: Debian keeps them off PATH, in /usr/lib/postgresql."""
    import shutil

    found = sorted((p for p in lib.glob("*/bin/initdb") if p.parts[-3].isdigit()), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def require_bindir(lib: Path = DEBIAN_LIB) -> Path:
    """The binaries, or a test failure (never a skip) that says how to install them."""
    bindir = find_bindir(lib)
    if bindir is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup "
                    "(as root it installs Debian's postgresql package)", pytrace=False)
    return bindir


class PrivatePostgres:
    """initdb into a temp folder, serve on a free 127.0.0.1 port with the socket in that folder.
    As root the server runs as the ``postgres`` OS user (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir: Path) -> None:
        import pwd
        import secrets

        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="newsrag-pg-"))
        self.data, self.password = self.root / "data", secrets.token_hex(12)
        self.user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.user:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
        (self.root / "pw").write_text(self.password)
        if self.user:
            os.chown(self.root / "pw", account.pw_uid, account.pw_gid)
        self.port = _free_port()

    def _run(self, *args: str) -> None:
        import subprocess

        result = subprocess.run([*self.user, *args], capture_output=True, text=True, timeout=120, check=False,
                                cwd=self.root)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr[-2000:]}\n{tail}")

    def start(self) -> str:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--pwfile", str(self.root / "pw"),
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync", "--no-instructions")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        import shutil

        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


