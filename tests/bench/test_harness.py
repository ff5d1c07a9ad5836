"""bench/harness: the statistics every bench script reports with (median, spread, extremes, ratios),
the process-usage readings, and the command-line plumbing."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from bench.harness.cli import expand_inputs, jsonl_objects, logger, scratch_folder
from bench.harness.stats import format_ratio, ratio, summarize
from bench.harness.usage import Usage, cpu_seconds, load_average_text, peak_rss_mib

pytestmark = pytest.mark.unit


def test_summarize_gives_median_spread_and_extremes() -> None:
    assert summarize([4.0, 1.0, 3.0, 2.0]) == {
        "n": 4, "min": 1.0, "p25": 1.75, "p50": 2.5, "p75": 3.25, "iqr": 1.5, "p95": 3.85, "p99": 3.97,
        "mean": 2.5, "max": 4.0}


def test_one_outlier_moves_the_mean_and_max_but_not_the_median_or_iqr() -> None:
    calm, spiked = summarize([1, 2, 3, 4, 5]), summarize([1, 2, 3, 4, 1000])
    assert (calm["p50"], calm["iqr"]) == (spiked["p50"], spiked["iqr"]) == (3.0, 2.0)
    assert spiked["mean"] == 202.0 and spiked["max"] == 1000.0 and calm["mean"] == 3.0


def test_summarize_of_one_value_and_of_none() -> None:
    one = summarize([7.25])
    assert one["n"] == 1 and one["min"] == one["p50"] == one["p99"] == one["max"] == 7.25 and one["iqr"] == 0.0
    assert summarize([]) == {"n": 0}
    assert summarize(np.array([])) == {"n": 0}  # an empty array is not ambiguous


def test_summarize_rounds_to_the_digits_asked() -> None:
    s = summarize([1 / 3, 2 / 3], digits=3)
    assert (s["min"], s["mean"], s["max"]) == (0.333, 0.5, 0.667)
    assert summarize([1 / 3])["p50"] == 0.33


def test_ratio_rounds_and_is_missing_when_it_cannot_be_computed() -> None:
    assert ratio(1, 4) == 0.25 and ratio(2, 3) == 0.667 and ratio(2, 3, digits=1) == 0.7
    assert ratio(1, 0) is None and ratio(None, 2) is None and ratio(2, None) is None
    assert ratio(float("nan"), 2) is None and ratio(2, float("nan")) is None
    assert format_ratio(0.90249) == "0.902" and format_ratio(1.5, digits=1) == "1.5"
    assert format_ratio(None) == "-" and format_ratio(None, missing="n/a") == "n/a"


def test_process_readings() -> None:
    assert cpu_seconds() > 0 and cpu_seconds(os.getpid()) > 0
    assert math.isnan(cpu_seconds(2**22 + 12345))  # above the kernel's pid limit: no such process
    own = peak_rss_mib()
    assert own is not None and own > 1 and peak_rss_mib(2**22 + 12345) is None
    assert (peak_rss_mib(os.getpid()) or 0) > 1
    assert len(load_average_text().split()) == 3


def test_a_usage_sample_has_every_figure_and_no_server_cpu_without_a_server() -> None:
    sample = Usage().done()
    assert sample.wall_s > 0 and sample.cpu_s >= 0 and sample.other_cores >= 0
    assert sample.server_cpu_s == 0.0
    assert len(sample.loadavg_start) == len(sample.loadavg_end) == 3
    with_server = Usage(server_pid=os.getpid()).done()  # this process standing in for a server
    assert with_server.server_cpu_s >= 0 and not math.isnan(with_server.server_cpu_s)


def test_expand_inputs_takes_paths_and_globs_once_each(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.jsonl", "c.txt"):
        (tmp_path / name).write_text("{}\n")
    files = expand_inputs([str(tmp_path / "*.jsonl"), str(tmp_path / "a.jsonl")], "bench/x.py")
    assert files == [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    with pytest.raises(SystemExit, match=r"bench/x.py: no such file: .*missing.jsonl"):
        expand_inputs([str(tmp_path / "missing.jsonl")], "bench/x.py")
    with pytest.raises(SystemExit, match="bench/x.py: nothing matches"):
        expand_inputs([str(tmp_path / "*.csv")], "bench/x.py")


def test_jsonl_objects_skips_blank_and_non_object_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n  \n{"b": 2}\n', encoding="utf-8")
    assert list(jsonl_objects(path)) == [{"a": 1}, {"b": 2}]


def test_scratch_folder_is_removed_unless_kept(capsys: pytest.CaptureFixture[str]) -> None:
    log = logger("test", clock=False)
    with scratch_folder("bench-test-", keep=False, log=log) as gone:
        (gone / "f").write_text("x")
    with scratch_folder("bench-test-", keep=True, log=log) as kept:
        pass
    assert not gone.exists() and kept.is_dir()
    assert capsys.readouterr().err == f"[test] kept {kept}\n"
    kept.rmdir()
