"""bench/realtimeqa_golden.py on a tiny RealTimeQA-format folder of our own
(tests/fixtures/realtimeqa-tiny, invented content): the corpus and golden set it builds, the
unanswerable labelling, malformed input naming file and line, and --eval through the real
pipeline, embedder and a private weaviate-server."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from newsrag.evaluation.golden import load_golden
from newsrag.evaluation.metrics import normalize_span

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "realtimeqa-tiny"
SCRIPT = ROOT / "bench" / "realtimeqa_golden.py"
SOLAR = "https://harbor-ledger.example/2026/01/06/port-selden-floating-solar.html"
ORCHESTRA = "https://valley-courier.example/2026/01/03/marrow-orchestra-season.html"
BRIDGE = "https://north-gazette.example/2026/01/13/kaarn-bridge-reopens.html"


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_realtimeqa_golden", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def articles_by_url() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(TINY.glob("*_gcs.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            for a in json.loads(line)["search_result"]:
                out.setdefault(a["url"], a)
    return out


@pytest.mark.unit
def test_builds_the_corpus_and_golden_set_marking_absent_evidence_unanswerable(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_module().main([str(TINY), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "4 questions, 2 answerable, 2 unanswerable (1 without evidence; 1 duplicate question ids skipped" in printed

    corpus = [json.loads(line) for line in (tmp_path / "corpus.jsonl").read_text().splitlines()]
    assert sorted(a["url"] for a in corpus) == sorted(articles_by_url())  # 7 search results, 4 articles
    assert len(corpus) == 4

    golden = load_golden(tmp_path / "golden.jsonl")
    cases = {c.id: c for c in golden.cases}
    assert list(cases) == ["20260109_0", "20260109_1", "20260109_2", "20260116_0"]
    solar, orchestra, ferry, bridge = cases.values()
    # the evidence's longest piece held verbatim by an article ("on Monday." vs "on Monday," ends it)
    assert solar.answerable and solar.gold_urls == [SOLAR] and solar.reference_answer == "Port Selden"
    span = "Port Selden switched on a floating solar farm covering a third of the Hollin reservoir on"
    assert solar.gold_spans == [span]
    assert normalize_span(solar.gold_spans[0]) in normalize_span(articles_by_url()[SOLAR]["text"])
    assert solar.tags == ["ledger quiz", "20260109"] and solar.type == "fact"
    assert bridge.answerable and bridge.gold_urls == [BRIDGE] and bridge.tags == ["north quiz", "20260116"]
    assert bridge.gold_spans == ["The Kaarn river bridge reopened to traffic on Tuesday after fourteen months of"]
    # paraphrased evidence (absent from the corpus) and no evidence at all: unanswerable, no gold
    for case in (orchestra, ferry):
        assert not case.answerable and case.type == "unanswerable"
        assert (case.gold_urls, case.gold_spans, case.gold_doc_ids) == ([], [], [])
    assert orchestra.reference_answer == "Its winter tour"

    stats = json.loads((tmp_path / "golden_stats.json").read_text())
    assert (stats["questions"], stats["answerable"], stats["unanswerable"]) == (4, 2, 2)
    assert stats["duplicate_question_ids_skipped"] == 1 and stats["without_evidence"] == 1
    assert stats["gold_in_own_search_results"] == 2
    # the choice "Its winter tour" is in the orchestra article, 6 days older than the question
    assert stats["unanswerable_by_evidence_but_answer_in_recent_own_results"] == 1
    diags = {d["id"]: d for d in map(json.loads, (tmp_path / "golden_diagnostics.jsonl").read_text().splitlines())}
    assert diags["20260109_1"]["answer_in_recent_own_results"] == [ORCHESTRA]
    assert diags["20260109_2"]["answer_in_recent_own_results"] == []  # the ferry article is 20 days old


@pytest.mark.unit
def test_the_answer_heuristic_labels_only_recent_own_results(tmp_path: Path) -> None:
    assert bench_module().main([str(TINY), "--out", str(tmp_path), "--answerable-by", "answer"]) == 0
    cases = {c.id: c for c in load_golden(tmp_path / "golden.jsonl").cases}
    orchestra = cases["20260109_1"]
    assert orchestra.answerable and orchestra.type == "fact-answer-heuristic"
    assert orchestra.gold_urls == [ORCHESTRA] and orchestra.gold_spans == []
    assert not cases["20260109_2"].answerable  # "6:10" is only in an article 20 days older
    assert cases["20260109_0"].type == "fact" and cases["20260109_0"].gold_spans


@pytest.mark.unit
def test_out_inside_the_repository_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        bench_module().main([str(TINY), "--out", str(ROOT / "artifacts" / "rtqa")])
    assert caught.value.code == 2
    assert "--out must be outside the repository" in capsys.readouterr().err
    assert not (ROOT / "artifacts" / "rtqa").exists()


QA = "20260109_qa.jsonl"
GCS = "20260116_gcs.jsonl"


@pytest.mark.unit
@pytest.mark.parametrize("file, line, replacement, message", [
    (QA, 2, '{"question_id": "20260109_1", "question_sentence": "What did', "invalid JSON: Unterminated string"),
    (QA, 3, '["20260109_2", "How early?"]', "a line must hold a JSON object, not list"),
    (QA, 1, '{"question_id": "20260109_0", "choices": ["a"], "answer": ["0"]}',
     "missing or empty field 'question_sentence'"),
    (QA, 2, '{"question_id": "x", "question_sentence": "Q?", "choices": ["a", "b"], "answer": ["5"]}',
     "'answer' ['5'] is not a list of indices into the 2 choices"),
    (GCS, 1, '{"question_id": "20260116_0", "search_result": "not a list"}', "'search_result' must be a list"),
])
def test_a_malformed_line_is_a_clear_error_naming_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, line: int, replacement: str,
        message: str) -> None:
    data = tmp_path / "data"
    shutil.copytree(TINY, data)
    lines = (data / file).read_text(encoding="utf-8").splitlines()
    lines[line - 1] = replacement
    (data / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert bench_module().main([str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"error: {data / file}:{line}: {message}" in err, err
    assert "Traceback" not in err and not (out / "golden.jsonl").exists()


@pytest.mark.integration
def test_eval_ingests_the_corpus_and_evaluates_the_golden_set(tmp_path: Path, weaviate_server: Any) -> None:
    """The whole script as a user runs it (a subprocess: --eval points NEWSRAG_HOME at a private
    server's temporary home), against the weaviate-server build the session installed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEAVIATE_")}
    result = subprocess.run([sys.executable, str(SCRIPT), str(TINY), "--out", str(tmp_path), "--eval"],
                            capture_output=True, text=True, env=env, timeout=600, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ingest: ok" in result.stdout and "chunks written" in result.stdout
    assert "weaviate-server stopped" in result.stderr

    with sqlite3.connect(tmp_path / "eval-history.sqlite") as db:
        [(run_json,)] = db.execute("SELECT run_json FROM eval_runs").fetchall()
    from newsrag.evaluation.models import EvalRun

    run = EvalRun.model_validate_json(run_json)
    golden = load_golden(tmp_path / "golden.jsonl")
    assert run.golden_sha256 == golden.sha256 and len(run.results) == 4
    assert run.index.object_count >= 4 and all(r.error is None for r in run.results)
    by_id = {r.case_id: r for r in run.results}
    for case in golden.cases:
        hit = by_id[case.id].metrics["hit@k"].value
        assert hit == (1.0 if case.answerable else None), case.id  # 4 articles: gold is always retrieved
    assert run.aggregates["hit@k"].n == 2 and run.aggregates["abstention_accuracy"].n == 4
    assert f"run {run.run_id}" in result.stdout and "hit@k" in result.stdout
    assert (tmp_path / "reports" / run.run_id / "report.html").is_file()
