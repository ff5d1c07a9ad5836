"""bench/celery.py's pure parts: its arguments, the registry it writes, the bracketed ratio and the
summary (the measurement needs the whole cluster: the bench is run, not tested)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.bench.conftest import load_script

pytestmark = pytest.mark.unit

bench = load_script("celery")


def test_defaults() -> None:
    args = bench.parse_args([])
    assert (args.sources, args.repetitions, args.json) == (8, 3, False)


@pytest.mark.parametrize("argv", [["--sources", "1"], ["--repetitions", "0"]])
def test_one_source_or_no_repetition_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)
    assert exit_info.value.code == 2 and argv[0] in capsys.readouterr().err


def test_the_registry_holds_one_feed_source_per_file(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    for name in ("b.rss", "a.xml", "c.atom", "README.md"):
        (feeds / name).write_text("<rss/>")
    sources = yaml.safe_load(bench.registry(tmp_path, 2, feeds).read_text())["sources"]
    assert sources == [{"id": "feed-0", "type": "feed", "url": str(feeds / "a.xml")},
                       {"id": "feed-1", "type": "feed", "url": str(feeds / "b.rss")}]
    with pytest.raises(SystemExit, match="holds 3 feeds, 4 asked for"):
        bench.registry(tmp_path, 4, feeds)


def test_each_one_worker_run_is_divided_by_the_two_worker_runs_around_it() -> None:
    runs = {"2": [{"per_s": 10.0}, {"per_s": 30.0}, {"per_s": 20.0}], "1": [{"per_s": 18.0}, {"per_s": 30.0}]}
    # 18 / mean(10, 30) = 0.9; 30 / mean(30, 20) = 1.2
    assert bench.ratios(runs) == {"n": 2, "p50": 1.05, "min": 0.9, "max": 1.2, "iqr": 0.15}


def test_render_names_the_load_the_runs_and_the_ratio() -> None:
    res = {"date": "2026-12-08 02:00 UTC", "sources": 8, "cpus": 2, "load_before": "1.0 1.0 1.0",
           "load_after": "2.0 1.5 1.2", "runs": {"2": [{"chunks": 100, "seconds": 50.0, "per_s": 2.0}],
                                                "1": [{"chunks": 100, "seconds": 55.0, "per_s": 1.82}]},
           "throughput 1 worker / 2 workers": {"n": 1, "p50": 0.91, "min": 0.91, "max": 0.91, "iqr": 0.0}}
    out = bench.render(res)
    assert "load average before 1.0 1.0 1.0, after 2.0 1.5 1.2" in out
    assert "1 worker(s): 100 chunks in 55.0 s" in out and "median 0.910" in out
