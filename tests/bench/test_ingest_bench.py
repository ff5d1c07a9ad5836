"""bench/ingest.py end to end on the project's own example archive: its correctness checks hold and
every figure the ratios are computed from is present (a renamed stage once left them empty)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bench.conftest import load_script

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT / "examples" / "news" / "archive.jsonl"


def test_the_benchmark_measures_the_pipeline_and_its_re_runs(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NEWSRAG_HOME", os.environ["NEWSRAG_HOME"])  # the bench points it at its own folder
    bench = load_script("ingest")
    bench.main([str(ARCHIVE), "--json"])
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    correctness = {k: v["ok"] for k, v in res["checks"].items() if not v["target"]}
    assert all(correctness.values()), correctness
    assert res["articles"] == 5 and res["run1"]["new"] == 5 and res["store_count"] == res["chunks"] > 5
    assert res["pipeline_stages"][bench.EMBED_STAGE]["calls"] >= 1
    assert 0 < res["pipeline_embed_s"] <= res["run1"]["seconds"]
    assert res["pipeline_ratio"] > 0 and 0 < res["projected_ratio"] <= 1.5
    assert res["rerun_same"]["status"] == "not_modified" and res["rerun_forgotten"]["chunks_embedded"] == 0


def test_no_path_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert load_script("ingest").main([]) == 2
    assert "give at least one JSONL path" in capsys.readouterr().err
