"""``newsrag ask`` on the real Weaviate: --since/--until follow the one date rule (a date-only --until
covers its whole day), --source takes a comma list, and sources are numbered as their markers (#20)."""

from __future__ import annotations

import json
import re
from typing import Any

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
