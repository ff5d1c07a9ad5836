"""bench/cluster.py's pure parts: its arguments, the bracketed ratios and the summary it assembles
from fixed runs (the measurements themselves need the servers: the bench is run, not tested)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.conftest import load_script

pytestmark = pytest.mark.unit

bench = load_script("cluster")


def test_defaults_and_quick_sizes() -> None:
    args = bench.parse_args([])
    assert (args.chunks, args.repetitions, args.queries, args.nodes, args.json) == (1000, 5, 50, 3, False)
    quick = bench.parse_args(["--quick", "--chunks", "5000", "--json"])
    assert (quick.chunks, quick.repetitions, quick.queries, quick.json) == (
        bench.QUICK["chunks"], bench.QUICK["repetitions"], bench.QUICK["queries"], True)


@pytest.mark.parametrize("argv", [["--repetitions", "0"], ["--chunks", "0"], ["--queries", "-1"], ["--nodes", "1"]])
def test_sizes_below_one_or_a_single_node_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_each_ratio_divides_by_the_baseline_before_and_after_it() -> None:
    assert bench.bracketed_ratios([50.0, 60.0], [100.0, 100.0, 140.0]) == [0.5, 0.5]


def test_a_bracket_needs_one_more_baseline_run() -> None:
    with pytest.raises(ValueError, match="needs 3 baseline runs for 2 measurements, got 2"):
        bench.bracketed_ratios([1.0, 2.0], [1.0, 2.0])


def test_a_zero_baseline_gives_no_ratio_rather_than_inf() -> None:
    assert bench.bracketed_ratios([5.0, 6.0], [0.0, 0.0, 4.0]) == [3.0]


def test_the_summary_of_fixed_runs() -> None:
    inserts = {"rf1": [1000.0, 1000.0, 800.0, 1200.0], "rf3": [500.0, 450.0, 400.0],
               "single": [1100.0, 900.0, 1000.0]}
    p95s = {"single": [10.0, 10.0, 20.0, 20.0], "cluster": [15.0, 30.0, 40.0]}
    res = bench.assemble(inserts, p95s)
    ratios = res["ratios"]
    # rf3: 500/1000, 450/900, 400/1000 -> 0.5, 0.5, 0.4
    assert ratios["insert rf3 QUORUM / rf1 (cluster)"] == {"n": 3, "p50": 0.5, "min": 0.4, "max": 0.5, "iqr": 0.05}
    # single: 1100/1000, 900/900, 1000/1000 -> 1.1, 1.0, 1.0
    assert ratios["insert single node / rf1 (cluster)"] == {"n": 3, "p50": 1.0, "min": 1.0, "max": 1.1, "iqr": 0.05}
    # cluster p95: 15/10, 30/15, 40/20 -> 1.5, 2.0, 2.0
    assert ratios["search p95 cluster rf3 / single node"] == {"n": 3, "p50": 2.0, "min": 1.5, "max": 2.0,
                                                               "iqr": 0.25}
    assert res["insert_per_s"]["rf1"]["n"] == 4 and res["insert_per_s"]["rf3"]["p50"] == 450.0
    assert res["search_p95_ms"]["single"]["p50"] == 15.0
    assert res["elsewhere"] == [bench.ELSEWHERE] and "bench/celery.py" in bench.ELSEWHERE


def test_render_prints_the_load_ratios_and_what_is_measured_elsewhere(capsys: pytest.CaptureFixture[str]) -> None:
    res = bench.assemble({"rf1": [1000.0, 1000.0], "rf3": [500.0], "single": [1000.0]},
                         {"single": [10.0, 10.0], "cluster": [15.0]})
    machine = {"loadavg": "1.20 1.00 0.90", "cpus": 2, "cpus_usable": 2}
    bench.render({**res, "date": "2026-12-07 23:50 UTC", "chunks": 10, "queries": 2, "repetitions": 1, "nodes": 3,
                  "machine_before": machine, "machine_after": machine})
    out = capsys.readouterr().out
    assert "load average before: 1.20 1.00 0.90 (cpus 2, usable 2)" in out
    assert "insert rf3 QUORUM / rf1 (cluster)" in out and "median 0.500" in out
    assert "search p95 cluster rf3 / single node" in out and "median 1.500" in out
    assert "elsewhere: ingest throughput, 1 Celery worker against 2: measured by bench/celery.py" in out


class CountingEmbedder:
    """Vectors from text lengths; counts the texts it embedded."""

    model_id = "fake/lengths"

    def __init__(self) -> None:
        self.embedded = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return [[float(len(t)), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.embedded += 1
        return [float(len(text)), 2.0]


def test_vectors_are_embedded_once_and_read_back_from_the_cache(tmp_path: Path) -> None:
    first, again = CountingEmbedder(), CountingEmbedder()
    docs, queries = bench.embedded(first, ["ab", "abc"], ["q"], tmp_path)
    assert first.embedded == 3 and docs.tolist() == [[2.0, 1.0], [3.0, 1.0]] and queries == [[1.0, 2.0]]
    cached_docs, cached_queries = bench.embedded(again, ["ab", "abc"], ["q"], tmp_path)
    assert again.embedded == 0 and cached_docs.tolist() == docs.tolist() and cached_queries == queries
    bench.embedded(again, ["ab", "abcd"], ["q"], tmp_path)  # other texts: another file
    assert again.embedded == 3 and len(list(tmp_path.glob("bench-cluster-*.npz"))) == 2


def test_no_vector_cache_keeps_nothing() -> None:
    assert bench.parse_args(["--no-vector-cache"]).vector_cache is None
    assert bench.parse_args([]).vector_cache == bench.DEFAULT_CACHE
