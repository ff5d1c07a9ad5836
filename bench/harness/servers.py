"""The servers a benchmark measures against, started and always stopped by the bench itself: a
private weaviate-server in a temporary home (through newsrag's ``LocalWeaviate``), and the app
served by uvicorn on a loopback socket in a background thread."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness.usage import peak_rss_mib

if TYPE_CHECKING:
    from newsrag.store.server import ServerState

CONFIGURED_SERVER_VARIABLES = ("WEAVIATE_URL", "WEAVIATE_GRPC_URL", "WEAVIATE_API_KEY")


def use_private_home(home: Path) -> None:
    """Point this process at ``home`` and forget any configured Weaviate, so every store the bench
    opens reaches its own private server. Call it before anything reads ``PathSettings``."""
    os.environ["NEWSRAG_HOME"] = str(home)
    for var in CONFIGURED_SERVER_VARIABLES:
        os.environ.pop(var, None)


@dataclass
class PrivateWeaviate:
    state: ServerState
    start_s: float  # from start() to ready, the install excluded
    peak_rss_at_stop: float | None = None  # MiB, read just before the server stopped

    @property
    def pid(self) -> int:
        return self.state.pid

    def peak_rss_mib(self) -> float | None:
        return peak_rss_mib(self.state.pid)


@contextmanager
def private_weaviate(home: Path) -> Iterator[PrivateWeaviate]:
    """A weaviate-server of the bench's own under ``home`` (free ports, data in ``home/weaviate-data``),
    installed if needed, ready when this yields, and stopped on the way out whatever happened."""
    from newsrag.core.settings import LocalWeaviateSettings, PathSettings
    from newsrag.store.server import LocalWeaviate

    server = LocalWeaviate(PathSettings(home=home), LocalWeaviateSettings(http_port=0, grpc_port=0,
                                                                          data_dir=home / "weaviate-data"),
                           dict(os.environ))  # the bench is an edge: its children get its environment
    server.install()
    started = time.perf_counter()
    try:
        running = PrivateWeaviate(server.start(), round(time.perf_counter() - started, 3))
        yield running
        running.peak_rss_at_stop = running.peak_rss_mib()
    finally:
        server.stop()


class AppServer:
    """An ASGI app (the real newsrag app) served by uvicorn on 127.0.0.1, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="bench-uvicorn")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def started(self) -> bool:
        return bool(self.server.started)

    def start(self, timeout: float = 180.0) -> None:
        """Serve, and return once uvicorn has run the app's lifespan startup."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited during startup (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {timeout:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Ask uvicorn to exit (the lifespan shutdown runs) and wait for its thread."""
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=30)
        self.sock.close()
