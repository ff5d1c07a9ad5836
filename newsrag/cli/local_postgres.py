"""A private PostgreSQL cluster in a folder of its own, from the server binaries of Debian's
``postgresql`` package (kept off PATH in /usr/lib/postgresql/<major>/bin; ``scripts/setup``
installs it as root). It keeps its data between starts, listens on 127.0.0.1 only (no Unix socket)
with password authentication, and, as root, runs as the ``postgres`` user: PostgreSQL refuses to
run as root."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

from newsrag.core.errors import ServerError, SetupError

DEBIAN_LIB = Path("/usr/lib/postgresql")
DATABASE = "airflow"


def find_bindir(lib: Path = DEBIAN_LIB) -> Path:
    """The newest installed server's binaries, or a SetupError saying how to install them."""
    found = sorted((p for p in lib.glob("*/bin/initdb") if p.parts[-3].isdigit()), key=lambda p: int(p.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    raise SetupError("PostgreSQL server binaries (initdb, pg_ctl) not found: run scripts/setup as root "
                     "(it installs Debian's postgresql package) or `apt-get install postgresql`")


class LocalPostgres:
    """The cluster in ``root``: ``root/data`` (the cluster), ``root/server.log``."""

    def __init__(self, root: Path, bindir: Path | None = None) -> None:
        self.root, self.data, self.log = root, root / "data", root / "server.log"
        self.bindir = bindir or find_bindir()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def url(self, password: str, port: int, driver: str = "psycopg", database: str = DATABASE) -> str:
        """The SQLAlchemy URL of ``database`` (``psycopg_async`` for asyncio engines)."""
        return f"postgresql+{driver}://postgres:{password}@127.0.0.1:{port}/{database}"

    def ensure_database(self, name: str, password: str, port: int) -> bool:
        """Create database ``name`` unless it exists (the server runs); whether it was created."""
        env = {**os.environ, "PGPASSWORD": password}
        found = subprocess.run([*self.as_user, str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U",
                                "postgres", "-d", DATABASE, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                               capture_output=True, text=True, timeout=60, check=False, cwd="/", env=env)
        if found.returncode != 0:
            raise ServerError(f"PostgreSQL psql failed (exit {found.returncode}): {found.stderr.strip()[-2000:]}")
        if found.stdout.strip() == "1":
            return False
        self._run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name, env=env)
        return True

    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def pid(self) -> int | None:
        """The postmaster's pid from its pid file (None when it does not run)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def start(self, password: str, port: int) -> None:
        """initdb on first use (with the ``airflow`` database), then start on 127.0.0.1:``port``."""
        first = not self.initialized()
        if first:
            self._initdb(password)
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories='' -c max_connections=100"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")
        if first:
            env = {**os.environ, "PGPASSWORD": password}
            self._run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE, env=env)

    def stop(self) -> bool:
        """Fast shutdown (running transactions are rolled back). Returns whether it was running."""
        if self.pid() is None:
            return False
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
        return True

    def _initdb(self, password: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            self._hand_to_postgres_user()
        pwfile = self.root / "initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password)
        if self.as_user:
            account = pwd.getpwnam("postgres")
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--pwfile", str(pwfile),
                      "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions")
        finally:
            pwfile.unlink(missing_ok=True)

    def _hand_to_postgres_user(self) -> None:
        """As root: the cluster folder belongs to ``postgres``, which must also reach it."""
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise SetupError("running as root, PostgreSQL needs the 'postgres' user: install Debian's "
                             "postgresql package (scripts/setup does)") from None
        os.chown(self.root, account.pw_uid, account.pw_gid)
        probe = subprocess.run([*self.as_user, "test", "-w", str(self.root)], check=False, timeout=30)
        if probe.returncode != 0:
            raise ServerError(f"the postgres user cannot write {self.root}: make every folder above it "
                              "searchable by others (chmod o+x), or set NEWSRAG_HOME to such a folder")

    def _run(self, tool: str, *args: str, env: dict[str, str] | None = None) -> None:
        result = subprocess.run([*self.as_user, str(self.bindir / tool), *args], capture_output=True, text=True,
                                timeout=180, check=False, cwd="/", env=env)
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ServerError(f"PostgreSQL {tool} failed (exit {result.returncode}): "
                              f"{(result.stderr or result.stdout).strip()[-2000:]}\n{tail}".rstrip())
