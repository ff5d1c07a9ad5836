"""The embedded weaviate-server: install, start, status, stop, and every way startup can go wrong."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from newsrag.core.errors import ServerError, SetupError
from newsrag.core.settings import LocalWeaviateSettings, PathSettings, Settings
from newsrag.store.server import LocalWeaviate, pick_port, server_env

REPO = Path(__file__).resolve().parents[2]


def server_in(home: Path, **settings: object) -> LocalWeaviate:
    """A server as an edge makes it: its child processes get the (test's) process environment."""
    return LocalWeaviate(PathSettings(home=home), LocalWeaviateSettings(**settings),  # type: ignore[arg-type]
                         dict(os.environ))


@pytest.mark.unit
def test_pick_port_prefers_the_given_port_when_free() -> None:
    free = pick_port("127.0.0.1", 0)
    assert pick_port("127.0.0.1", free) == free


@pytest.mark.unit
def test_pick_port_moves_on_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        other = pick_port("127.0.0.1", port)
    assert other != port and other > 0


@pytest.mark.unit
def test_missing_go_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    server = server_in(tmp_path / "home", build_cache=tmp_path / "empty-cache")
    with pytest.raises(SetupError) as info:
        server.install()
    assert "go install github.com/weaviate/weaviate/cmd/weaviate-server@v" in str(info.value)


@pytest.mark.unit
def test_go_is_looked_up_on_the_roots_path_not_the_process_one(tmp_path: Path) -> None:
    """The process PATH may hold go; the root's does not: the root is what the library uses."""
    root = Settings({"NEWSRAG_HOME": str(tmp_path / "home"), "PATH": str(tmp_path),
                     "NEWSRAG_WEAVIATE_BUILD_CACHE": str(tmp_path / "empty-cache")})
    with pytest.raises(SetupError, match=r"\('go'\) is not on PATH"):
        LocalWeaviate.from_settings(root).install()


@pytest.mark.unit
def test_the_server_is_the_roots_and_its_children_inherit_the_roots_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_HOME", str(tmp_path / "process-home"))
    monkeypatch.setenv("HOME", "/process-home")
    root = Settings({"NEWSRAG_HOME": str(tmp_path / "root-home"), "NEWSRAG_WEAVIATE_HTTP_PORT": "8123",
                     "PATH": "/root/bin", "OPENAI_API_KEY": "sk-never-inherited"})
    server = LocalWeaviate.from_settings(root)
    assert (server.state_file, server.settings.http_port) == (tmp_path / "root-home" / "weaviate.json", 8123)
    assert "sk-never" not in repr(server)
    env = server_env(tmp_path / "data", 50061, [1, 2, 3, 4], server.environ)
    assert env["PATH"] == "/root/bin" and "HOME" not in env and "OPENAI_API_KEY" not in env
    assert env["GRPC_PORT"] == "50061" and env["RAFT_PORT"] == "3"
    assert LocalWeaviate.from_settings().state_file == Path(".newsrag") / "weaviate.json"  # no root: the defaults


@pytest.mark.unit
def test_missing_binary_on_start_names_the_install_command(tmp_path: Path) -> None:
    server = server_in(tmp_path / "home", build_cache=tmp_path / "empty-cache")
    with pytest.raises(SetupError, match="newsrag weaviate install"):
        server.start()


@pytest.mark.integration
def test_unwritable_data_folder_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    server = server_in(tmp_path / "home", data_dir=blocker / "data", http_port=0, grpc_port=0)
    server.install()
    with pytest.raises(ServerError, match="not writable"):
        server.start()
    assert server.read_state() is None


@pytest.mark.integration
def test_corrupt_data_folder_is_reported_with_log_lines(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raft").mkdir(parents=True)
    (data / "raft" / "raft.db").write_bytes(b"\x00garbage" * 512)
    (data / "schema.db").write_bytes(b"\x00garbage" * 512)
    server = server_in(tmp_path / "home", data_dir=data, http_port=0, grpc_port=0, ready_timeout=60)
    server.install()
    with pytest.raises(ServerError) as info:
        server.start()
    message = str(info.value)
    assert "corrupt" in message and str(data) in message
    assert "Last log lines" in message
    assert server.read_state() is None


@pytest.mark.integration
def test_never_ready_shows_the_log_tail(tmp_path: Path) -> None:
    server = server_in(tmp_path / "home", http_port=0, grpc_port=0, ready_timeout=0.01)
    server.install()
    with pytest.raises(ServerError) as info:
        server.start()
    assert "did not become ready within" in str(info.value)
    assert "Last log lines" in str(info.value)
    assert server.status() is None


def cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NEWSRAG_HOME": str(home), **env}
    return subprocess.run([sys.executable, "-m", "newsrag", *args], env=full_env, capture_output=True,
                          text=True, timeout=180, cwd=REPO)


@pytest.mark.integration
def test_cli_start_status_stop_and_data_survives_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with socket.socket() as taken:  # the configured port is busy: start must pick another
        taken.bind(("127.0.0.1", 0))
        busy = str(taken.getsockname()[1])
        env = {"NEWSRAG_WEAVIATE_HTTP_PORT": busy, "NEWSRAG_WEAVIATE_GRPC_PORT": "0"}
        assert cli(home, "weaviate", "install").returncode == 0
        started = cli(home, "weaviate", "start", **env)
        assert started.returncode == 0, started.stderr
    server = server_in(home)
    state = server.read_state()
    assert state is not None and str(state.http_port) != busy
    try:
        status = cli(home, "weaviate", "status")
        assert status.returncode == 0 and f"version {server.settings.version}" in status.stdout
        again = cli(home, "weaviate", "start", **env)  # reuses the running instance
        assert again.returncode == 0 and f"pid {state.pid}" in again.stdout
        _write_marker_collection(state.http_port)
        assert cli(home, "weaviate", "stop").returncode == 0
        stopped = cli(home, "weaviate", "status")
        assert stopped.returncode == 3 and "not running" in stopped.stdout
        assert cli(home, "weaviate", "start", **env).returncode == 0
        new_state = server.read_state()
        assert new_state is not None and _has_marker_collection(new_state.http_port)
    finally:
        cli(home, "weaviate", "stop")


def _write_marker_collection(port: int) -> None:
    import httpx

    resp = httpx.post(f"http://127.0.0.1:{port}/v1/schema", json={"class": "Survivor", "vectorizer": "none"})
    assert resp.status_code == 200, resp.text
    obj = httpx.post(f"http://127.0.0.1:{port}/v1/objects",
                     json={"class": "Survivor", "properties": {"name": "kept"}, "vector": [0.1, 0.2]})
    assert obj.status_code == 200, obj.text


def _has_marker_collection(port: int) -> bool:
    import httpx

    resp = httpx.get(f"http://127.0.0.1:{port}/v1/objects", params={"class": "Survivor"})
    return resp.status_code == 200 and [o["properties"]["name"] for o in resp.json()["objects"]] == ["kept"]


@pytest.mark.unit
def test_cli_invalid_setting_exits_2_without_traceback(tmp_path: Path) -> None:
    result = cli(tmp_path, "weaviate", "start", NEWSRAG_WEAVIATE_READY_TIMEOUT="-5")
    assert result.returncode == 2
    assert "NEWSRAG_WEAVIATE_READY_TIMEOUT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.unit
def test_cli_missing_binary_exits_1_without_traceback(tmp_path: Path) -> None:
    result = cli(tmp_path, "weaviate", "start", NEWSRAG_WEAVIATE_BUILD_CACHE=str(tmp_path / "nocache"))
    assert result.returncode == 1
    assert "go install github.com/weaviate/weaviate/cmd/weaviate-server" in result.stderr
    assert "Traceback" not in result.stderr
