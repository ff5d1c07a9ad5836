"""``newsrag ask`` on the real Weaviate: --since/--until follow the one date rule (a date-only --until
covers its whole day), --source takes a comma list, and sources are numbered as their markers (#20).
``newsrag serve`` run as a user runs it: the app it serves reads the same environment (#12 item 3)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

MUSEUM = "https://calder-chronicle.example/2026/09/12/maritime-museum-reopens"  # 2026-09-12T21:20Z
QUESTION = "How much did the Calder Maritime Museum's renovation cost?"


@pytest.fixture
def run(corpus_collection: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``newsrag <args>`` through typer's runner against the session's corpus collection."""
    from typer.testing import CliRunner

    from newsrag.cli.main import app

    monkeypatch.setenv("WEAVIATE_COLLECTION", corpus_collection)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(app, list(args))

    return invoke


def answer_of(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_date_only_until_includes_its_whole_day(run: Any) -> None:
    answer = answer_of(run("ask", QUESTION, "--until", "2026-09-12", "--json"))
    assert [s["url"] for s in answer["sources"]] == [MUSEUM]
    before = answer_of(run("ask", QUESTION, "--until", "2026-09-11", "--json"))
    assert MUSEUM not in [s["url"] for s in before["sources"]]


def test_a_date_and_a_zoned_time_mix(run: Any) -> None:
    answer = answer_of(run("ask", QUESTION, "--since", "2026-09-12", "--until", "2026-09-12T23:59:59Z", "--json"))
    assert [s["url"] for s in answer["sources"]] == [MUSEUM]
    same_day = answer_of(run("ask", QUESTION, "--since", "2026-09-12", "--until", "2026-09-12", "--json"))
    assert [s["url"] for s in same_day["sources"]] == [MUSEUM]


def test_a_comma_list_of_sources(run: Any) -> None:
    answer = answer_of(run("ask", QUESTION, "--source", "tech-wire,archive", "--json"))
    assert [s["url"] for s in answer["sources"]] == [MUSEUM]
    assert {c["source_id"] for c in answer["citations"]} == {"archive"}


def test_the_printed_sources_carry_the_markers_numbers(run: Any) -> None:
    result = run("ask", QUESTION, "--until", "2026-09-12")
    assert result.exit_code == 0, result.output
    text = re.search(r"^A: (.*?)\n\S+ · prompt ", result.stdout, re.MULTILINE | re.DOTALL)  # the answer, wrapped
    assert text, result.stdout
    markers = sorted({int(n) for n in re.findall(r"\[(\d+)\]", text.group(1))})
    listed = [int(n) for n in re.findall(r"^\[(\d+)\] ", result.stdout, re.MULTILINE)]
    assert markers == listed == list(range(1, len(listed) + 1)) and MUSEUM in result.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (["--since", "12/09/2026"], "--since: expected a date"),
    (["--until", "tomorrow"], "--until: expected a date"),
    (["--since", "2026-09-13", "--until", "2026-09-12"], "'--since' must be before '--until'"),
])
def test_a_bad_date_exits_2_naming_the_option(run: Any, args: list[str], fragment: str) -> None:
    result = run("ask", QUESTION, *args)
    assert result.exit_code == 2 and fragment in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_ask_reads_its_settings_from_the_environment(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_SEARCH_TOP_K", "1")
    monkeypatch.setenv("NEWSRAG_EXTRACTIVE_MAX_SENTENCES", "1")
    answer = answer_of(run("ask", QUESTION, "--json"))
    assert len(answer["retrieval"]) == 1 and len(answer["citations"]) == 1
    assert answer["sources"][0]["url"] == MUSEUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False  # not listening yet


@pytest.fixture
def served(corpus_collection: str, tmp_path: Any) -> Iterator[str]:
    """``newsrag serve`` in a child process configured only by environment variables, as a user runs it."""
    port = free_port()
    env = {**os.environ, "WEAVIATE_COLLECTION": corpus_collection, "NEWSRAG_APP_PORT": str(port),
           "NEWSRAG_APP_MODEL_NAME": "served-from-env", "NEWSRAG_SEARCH_TOP_K": "1",
           "NEWSRAG_APP_FEEDBACK_DB": str(tmp_path / "feedback.sqlite"),
           "NEWSRAG_APP_PROMPT_REGISTRY": str(tmp_path / "registry.sqlite")}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "newsrag", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # loading the model on a busy machine
        while proc.poll() is None and time.monotonic() < deadline and not ready(url):
            time.sleep(0.5)
        assert proc.poll() is None and ready(url), (tmp_path / "serve.log").read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_serve_answers_with_the_environment_it_was_started_with(served: str) -> None:
    models = httpx.get(f"{served}/v1/models", timeout=30).json()
    assert [m["id"] for m in models["data"]] == ["served-from-env"]
    resp = httpx.post(f"{served}/v1/ask", json={"question": QUESTION}, timeout=60)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert len(answer["retrieval"]) == 1 and [s["url"] for s in answer["sources"]] == [MUSEUM]
