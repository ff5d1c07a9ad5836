"""Build, start, inspect and stop the embedded weaviate-server on loopback.

This module never imports the ``weaviate`` client: it manages a process and talks plain HTTP.
State (pid, ports, data folder, version) lives in ``$NEWSRAG_HOME/weaviate.json`` so any process
on the machine (CLI, tests, Airflow workers) can find and reuse the running server. Its settings
and the environment its child processes (``go install``, the server) inherit come from the root
:class:`~newsrag.core.settings.Settings` an edge built (:meth:`LocalWeaviate.from_settings`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from newsrag.core.errors import ServerError, SetupError
from newsrag.core.settings import LocalWeaviateSettings, PathSettings, Settings

MODULE = "github.com/weaviate/weaviate/cmd/weaviate-server"
BINARY = "weaviate-server"


@dataclass(frozen=True)
class ServerState:
    pid: int
    host: str
    http_port: int
    grpc_port: int
    data_dir: str
    log_file: str
    version: str

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


@dataclass
class LocalWeaviate:
    """One embedded server, identified by its home folder. ``environ`` is what its child processes
    inherit (PATH, HOME, ...: ``go install`` needs them); empty by default, as the library never
    reads the process environment: an edge passes its root's (:meth:`from_settings`)."""

    paths: PathSettings
    settings: LocalWeaviateSettings
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets: never shown

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LocalWeaviate:
        """The server the root describes (``NEWSRAG_HOME``, ``NEWSRAG_WEAVIATE_*``), its child
        processes given the root's environment; None: the defaults and an empty environment."""
        root = settings if settings is not None else Settings({})
        return cls(root.get(PathSettings), root.get(LocalWeaviateSettings), root.environ)

    # -- locations -------------------------------------------------------------------------
    @property
    def binary(self) -> Path:
        return self.paths.tools_dir / f"weaviate-server-v{self.settings.version}" / BINARY

    @property
    def cached_binary(self) -> Path:
        return self.settings.build_cache / "weaviate" / f"v{self.settings.version}" / BINARY

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir or self.paths.home / "weaviate-data"

    @property
    def state_file(self) -> Path:
        return self.paths.home / "weaviate.json"

    @property
    def log_file(self) -> Path:
        return self.paths.logs_dir / "weaviate.log"

    # -- install ---------------------------------------------------------------------------
    def install(self) -> Path:
        """Make the pinned binary available; builds once per machine, then copies from the cache."""
        if _is_executable(self.binary):
            return self.binary
        if not _is_executable(self.cached_binary):
            self._go_install()
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.binary.with_suffix(".tmp")
        shutil.copy2(self.cached_binary, tmp)
        os.replace(tmp, self.binary)
        return self.binary

    def install_command(self) -> str:
        return f"go install {MODULE}@v{self.settings.version}"

    def _go_install(self) -> None:
        go = shutil.which("go", path=self.environ.get("PATH", os.defpath))
        if go is None:
            raise SetupError(
                "the Go toolchain ('go') is not on PATH; install Go >= 1.26, then run "
                f"`newsrag weaviate install` (it runs: {self.install_command()})"
            )
        gobin = self.cached_binary.parent
        gobin.mkdir(parents=True, exist_ok=True)
        env = {**self.environ, "GOBIN": str(gobin), "CGO_ENABLED": "0"}
        proc = subprocess.run(
            [go, "install", f"{MODULE}@v{self.settings.version}"],
            env=env, capture_output=True, text=True, check=False,
        )
        if proc.returncode != 0 or not _is_executable(self.cached_binary):
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise SetupError(f"`{self.install_command()}` failed (exit {proc.returncode}):\n{tail}")

    # -- lifecycle -------------------------------------------------------------------------
    def status(self) -> dict[str, object] | None:
        """The running server's state plus its reported version, or None when not running."""
        state = self.read_state()
        if state is None or not pid_alive(state.pid):
            return None
        meta = _get_json(f"{state.http_url}/v1/meta")
        if meta is None:
            return {**asdict(state), "ready": False}
        return {**asdict(state), "ready": True, "server_version": meta.get("version")}

    def start(self) -> ServerState:
        """Start the server (or reuse a running one) and wait until it is ready."""
        running = self.read_state()
        if running and pid_alive(running.pid) and http_ready(running.http_url):
            return running
        if running:
            self._stop_pid(running.pid)
            self.state_file.unlink(missing_ok=True)
        binary = self.binary
        if not _is_executable(binary):
            raise SetupError(
                f"weaviate-server v{self.settings.version} is not installed at {binary}; "
                f"run `newsrag weaviate install` (it runs: {self.install_command()})"
            )
        self._check_data_dir()
        state = self._spawn(binary)
        self._wait_ready(state)
        return state

    def stop(self) -> bool:
        """Stop the server if it runs. Returns whether something was stopped."""
        state = self.read_state()
        if state is None:
            return False
        stopped = self._stop_pid(state.pid)
        self.state_file.unlink(missing_ok=True)
        return stopped

    def read_state(self) -> ServerState | None:
        try:
            return ServerState(**json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise ServerError(f"state file {self.state_file} is unreadable ({exc}); delete it") from None

    # -- internals -------------------------------------------------------------------------
    def _check_data_dir(self) -> None:
        data = self.data_dir
        try:
            data.mkdir(parents=True, exist_ok=True)
            probe = data / ".newsrag-write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ServerError(f"the Weaviate data folder {data} is not writable: {exc.strerror or exc}") from None

    def _spawn(self, binary: Path) -> ServerState:
        s = self.settings
        http_port = pick_port(s.host, s.http_port)
        grpc_port = pick_port(s.host, s.grpc_port, avoid={http_port})
        internal = self._internal_ports({http_port, grpc_port})
        env = server_env(self.data_dir, grpc_port, internal, self.environ)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(
                [str(binary), "--host", s.host, "--port", str(http_port), "--scheme", "http"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI process; stopped by pid
            )
        state = ServerState(proc.pid, s.host, http_port, grpc_port, str(self.data_dir.resolve()),
                            str(self.log_file.resolve()), s.version)
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(state), indent=2))
        self._proc = proc
        return state

    def _internal_ports(self, avoid: set[int]) -> list[int]:
        """Gossip, data and Raft ports. Raft records its own address in the data folder, so the
        ports are kept beside the data and reused on every start while they are free."""
        record = self.data_dir / ".newsrag-cluster-ports.json"
        with contextlib.suppress(OSError, ValueError):
            saved = [int(p) for p in json.loads(record.read_text())]
            if len(saved) == 4 and all(p not in avoid and port_free(self.settings.host, p) for p in saved):
                return saved
        gossip = pick_port(self.settings.host, 0, avoid=avoid)
        data = pick_port(self.settings.host, 0, avoid=avoid | {gossip})
        raft = free_port_pair(self.settings.host, avoid | {gossip, data})
        ports = [gossip, data, raft, raft + 1]
        record.write_text(json.dumps(ports))
        return ports

    def _wait_ready(self, state: ServerState) -> None:
        deadline = time.monotonic() + self.settings.ready_timeout
        proc: subprocess.Popen[bytes] | None = getattr(self, "_proc", None)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                self.state_file.unlink(missing_ok=True)
                raise ServerError(
                    f"weaviate-server exited with code {proc.returncode} during startup; the data folder "
                    f"{state.data_dir} may be corrupt or unwritable. Last log lines:\n{self.log_tail()}"
                )
            if http_ready(state.http_url):
                if proc is not None:
                    proc.returncode = 0  # detached on purpose: it outlives us and is stopped by pid
                return
            time.sleep(0.25)
        self._stop_pid(state.pid)
        self.state_file.unlink(missing_ok=True)
        raise ServerError(
            f"weaviate-server did not become ready within {self.settings.ready_timeout:.0f}s "
            f"at {state.http_url}. Last log lines:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:])

    def _stop_pid(self, pid: int, timeout: float = 30.0) -> bool:
        if not pid_alive(pid):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_exit(pid, timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_exit(pid, 5)
        return True


def server_env(data_dir: Path, grpc_port: int, internal_ports: list[int],
               environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: its configuration, and of ``environ`` (the root's) only what a
    process needs to run (never the secrets it may hold)."""
    gossip, data, raft, raft_rpc = internal_ports
    keep = {k: v for k, v in (environ or {}).items() if k in ("PATH", "HOME", "TMPDIR", "LANG", "TZ")}
    return {
        **keep,
        "PERSISTENCE_DATA_PATH": str(data_dir.resolve()),
        "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "true",
        "DEFAULT_VECTORIZER_MODULE": "none",
        "ENABLE_MODULES": "",
        "CLUSTER_HOSTNAME": "node1",
        "CLUSTER_IN_LOCALHOST": "true",
        "CLUSTER_BIND_ADDR": "127.0.0.1",
        "CLUSTER_ADVERTISE_ADDR": "127.0.0.1",
        "CLUSTER_GOSSIP_BIND_PORT": str(gossip),
        "CLUSTER_DATA_BIND_PORT": str(data),
        "RAFT_PORT": str(raft),
        "RAFT_INTERNAL_RPC_PORT": str(raft_rpc),
        "RAFT_BOOTSTRAP_EXPECT": "1",
        "GRPC_PORT": str(grpc_port),
        "DISABLE_TELEMETRY": "true",
        "GO_PROFILING_DISABLE": "true",
        "PROMETHEUS_MONITORING_ENABLED": "false",
        "QUERY_DEFAULTS_LIMIT": "25",
        "LOG_LEVEL": "info",
        "LIMIT_RESOURCES": "true",
    }


def pick_port(host: str, preferred: int, avoid: set[int] | None = None) -> int:
    """Return ``preferred`` when it is free, else any free port."""
    avoid = avoid or set()
    if preferred and preferred not in avoid and port_free(host, preferred):
        return preferred
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in avoid:
            return port
    raise ServerError("no free TCP port found on loopback")


def free_port_pair(host: str, avoid: set[int]) -> int:
    """A free port P with P+1 free too: Weaviate derives its Raft RPC port as Raft port + 1."""
    for _ in range(100):
        port = pick_port(host, 0, avoid=avoid)
        if port < 65535 and port + 1 not in avoid and port_free(host, port + 1):
            return port
    raise ServerError("no two adjacent free TCP ports found on loopback")


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on the port: SO_REUSEADDR, as servers set it, so that a port
    whose last server just stopped (its connections in TIME_WAIT) counts as free, and a restarted
    server keeps its port; a port another socket listens on is still taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, ValueError):
        # a zombie child has exited; treat it as gone
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


def wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def http_ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/v1/.well-known/ready", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _get_json(url: str) -> dict[str, object] | None:
    try:
        resp = httpx.get(url, timeout=5.0)
    except httpx.HTTPError:
        return None
    return resp.json() if resp.status_code == 200 else None
