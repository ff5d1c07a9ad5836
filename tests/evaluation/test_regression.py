"""The regression gate on hand-made runs: floors, drops beyond noise (paired and unpaired),
crashes, metric-name validation, and the per-question failure reasons and aggregates it relies on."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from newsrag.core.errors import ConfigError
from newsrag.core.settings import load
from newsrag.evaluation.models import (
    EvalRun,
    IndexSnapshot,
    MetricValue,
    QuestionResult,
    RetrievalConfig,
)
from newsrag.evaluation.regression import (
    KNOWN_METRICS,
    RegressionSettings,
    aggregate,
    aggregate_groups,
    apply_gate,
    check,
    failure_reason,
)
from newsrag.evaluation.stats import paired_bootstrap_diff

pytestmark = pytest.mark.unit

NO_FLOORS: dict[str, Any] = {"min_hit_at_k": 0.0, "min_faithfulness": 0.0, "min_abstention_accuracy": 0.0}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MIN_HIT_AT_K", "MIN_FAITHFULNESS", "MIN_ABSTENTION_ACCURACY", "FLOORS", "MAX_DROP", "WATCH",
                "MAX_ERROR_RATE"):
        monkeypatch.delenv(f"NEWSRAG_EVAL_{var}", raising=False)


def make_run(run_id: str, values: dict[str, Sequence[float | None]], *, ids: Sequence[str] | None = None,
             errors: int = 0) -> EvalRun:
    n = len(next(iter(values.values())))
    ids = list(ids or [f"q{i:02d}" for i in range(n)])
    results = [QuestionResult(case_id=cid, question=f"question {cid}", tags=["even" if i % 2 == 0 else "odd"],
                              metrics={m: MetricValue(value=v[i], method=f"offline:{m}") for m, v in values.items()},
                              latency_ms=100.0 + i)
               for i, cid in enumerate(ids)]
    results += [QuestionResult(case_id=f"crash{i}", question="?", error="StoreUnavailable: down")
                for i in range(errors)]
    return EvalRun(run_id=run_id, started_at=datetime(2026, 11, 1, tzinfo=UTC), golden_path="g.jsonl",
                   golden_sha256="a" * 64, index=IndexSnapshot(collection="C", object_count=10),
                   prompt_name="p", prompt_version="v1", generator="extractive", model="extractive",
                   retrieval=RetrievalConfig(), results=results, aggregates=aggregate(results))


def test_floors_flag_a_mean_below_and_name_the_setting() -> None:
    run = make_run("r", {"hit@k": [1, 1, 0, 0], "faithfulness": [1, 0.5, 0.5, None],
                         "abstention_accuracy": [1, 0, 0, 0]})
    reasons = check(run, None, RegressionSettings())
    assert reasons == [
        "hit@k 0.500 is below the floor 0.600 (NEWSRAG_EVAL_MIN_HIT_AT_K)",
        "abstention_accuracy 0.250 is below the floor 0.500 (NEWSRAG_EVAL_MIN_ABSTENTION_ACCURACY)",
    ]  # faithfulness 0.667 passes; None was left out of its mean
    at_floor = make_run("r", {"hit@k": [1, 1, 1, 0, 0], "faithfulness": [0.5] * 5})
    assert check(at_floor, None, RegressionSettings()) == []  # 0.6 is not below 0.6
    unmeasured = make_run("r", {"hit@k": [None, None]})
    assert check(unmeasured, None, RegressionSettings()) == []


def test_extra_floors_and_thresholds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_EVAL_MIN_HIT_AT_K", "0.95")
    monkeypatch.setenv("NEWSRAG_EVAL_FLOORS", '{"ndcg@k": 0.9}')
    settings = load(RegressionSettings)
    run = make_run("r", {"hit@k": [1] * 9 + [0], "ndcg@k": [0.8] * 10})
    assert check(run, None, settings) == [
        "hit@k 0.900 is below the floor 0.950 (NEWSRAG_EVAL_MIN_HIT_AT_K)",
        "ndcg@k 0.800 is below the floor 0.900 (NEWSRAG_EVAL_FLOORS)",
    ]


def test_unknown_metric_names_are_a_config_error_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"NEWSRAG_EVAL_FLOORS: unknown metric name\(s\) 'hit@10', 'faithfull'"):
        RegressionSettings(floors={"hit@10": 0.5, "mrr": 0.2, "faithfull": 0.1})
    with pytest.raises(ConfigError, match=r"NEWSRAG_EVAL_WATCH: unknown metric name\(s\) 'precision'"):
        RegressionSettings(watch=("hit@k", "precision"))
    monkeypatch.setenv("NEWSRAG_EVAL_WATCH", "hit@k, mrr")
    assert load(RegressionSettings).watch == ("hit@k", "mrr")
    monkeypatch.setenv("NEWSRAG_EVAL_FLOORS", '{"recall@5": 0.5}')
    with pytest.raises(ConfigError, match="'recall@5'") as caught:
        load(RegressionSettings)
    assert "known: " + ", ".join(KNOWN_METRICS) in str(caught.value)
    monkeypatch.setenv("NEWSRAG_EVAL_FLOORS", "hit@k=0.5")
    with pytest.raises(ConfigError, match="NEWSRAG_EVAL_FLOORS: expected a JSON object"):
        load(RegressionSettings)


def test_a_paired_drop_beyond_noise_and_max_drop_is_flagged() -> None:
    base = make_run("base", {"hit@k": [1.0] * 40})
    cur = make_run("cur", {"hit@k": [1.0] * 30 + [0.0] * 10})
    reasons = check(cur, base, RegressionSettings(**NO_FLOORS))
    assert len(reasons) == 1
    assert reasons[0].startswith("hit@k dropped 1.000 -> 0.750 vs run base (paired diff -0.250, 95% CI [")
    improved = make_run("cur", {"hit@k": [1.0] * 40})
    assert check(improved, make_run("base", {"hit@k": [1.0] * 30 + [0.0] * 10}), RegressionSettings(**NO_FLOORS)) == []


def test_a_drop_within_max_drop_is_not_flagged() -> None:
    base = make_run("base", {"faithfulness": [1.0] * 40})
    cur = make_run("cur", {"faithfulness": [1.0] * 39 + [0.0]})  # -0.025
    assert check(cur, base, RegressionSettings(**NO_FLOORS)) == []
    strict = RegressionSettings(**NO_FLOORS, max_drop=0.0)
    assert check(cur, base, strict) == []  # beyond max_drop, but one question is noise: CI reaches 0


def test_a_large_but_noisy_drop_is_not_flagged() -> None:
    diffs = [-0.5, 0.4, -0.5, 0.3, -0.4, 0.3, -0.3, 0.2, -0.4, -0.1]  # mean -0.1, twice max_drop
    base = make_run("base", {"correctness": [0.5] * 10})
    cur = make_run("cur", {"correctness": [0.5 + d for d in diffs]})
    d = paired_bootstrap_diff([0.5] * 10, [0.5 + x for x in diffs])
    assert d is not None and d.diff == pytest.approx(-0.1) and d.high >= 0  # the premise
    assert check(cur, base, RegressionSettings(**NO_FLOORS)) == []
    consistent = make_run("cur", {"correctness": [0.4] * 10})  # the same mean drop, every question
    assert [r.split(" (")[0] for r in check(consistent, base, RegressionSettings(**NO_FLOORS))] == \
        ["correctness dropped 0.500 -> 0.400 vs run base"]


def test_drops_between_runs_on_different_questions_need_separate_intervals() -> None:
    base = make_run("base", {"hit@k": [1.0] * 40}, ids=[f"a{i}" for i in range(40)])
    far = make_run("cur", {"hit@k": [1.0, 0.0] * 20}, ids=[f"b{i}" for i in range(40)])
    [reason] = check(far, base, RegressionSettings(**NO_FLOORS))
    assert reason.startswith("hit@k dropped 1.000 -> 0.500 vs run base (different questions: intervals")
    near = make_run("cur", {"hit@k": [1.0] * 37 + [0.0] * 3}, ids=[f"b{i}" for i in range(40)])  # -0.075
    assert near.aggregates["hit@k"].high == 1.0
    assert check(near, base, RegressionSettings(**NO_FLOORS)) == []  # intervals overlap


def test_a_sampled_run_is_paired_with_the_baseline_on_the_shared_questions() -> None:
    base = make_run("base", {"hit@k": [1.0] * 40})
    sample = make_run("cur", {"hit@k": [1.0] * 6 + [0.0] * 6}, ids=[f"q{i:02d}" for i in range(0, 40, 4)] +
                      ["new1", "new2"])  # 10 shared questions, 2 the baseline never saw
    [reason] = check(sample, base, RegressionSettings(**NO_FLOORS))
    assert reason.startswith("hit@k dropped 1.000 -> 0.500 vs run base (paired diff over 10 shared questions -0.")


def test_only_watched_metrics_are_compared_and_a_run_is_not_its_own_baseline() -> None:
    base = make_run("base", {"hit@k": [1.0] * 20, "mrr": [1.0] * 20})
    cur = make_run("cur", {"hit@k": [0.0] * 20, "mrr": [0.0] * 20})
    settings = RegressionSettings(**NO_FLOORS, watch=("mrr",))
    assert [r.split(" ")[0] for r in check(cur, base, settings)] == ["mrr"]
    assert check(cur, cur, settings) == []


def test_too_many_crashed_questions_is_a_regression() -> None:
    run = make_run("r", {"hit@k": [1.0] * 7}, errors=3)
    assert check(run, None, RegressionSettings()) == [
        ("3 of 10 questions failed with an error (more than 20%, NEWSRAG_EVAL_MAX_ERROR_RATE); "
         "most common: StoreUnavailable: down")]
    assert check(make_run("r", {"hit@k": [1.0] * 8}, errors=2), None, RegressionSettings()) == []


def test_apply_gate_records_the_verdict_on_the_run() -> None:
    base = make_run("base", {"hit@k": [1.0] * 20})
    bad = make_run("bad", {"hit@k": [0.0] * 20})
    reasons = apply_gate(bad, base, RegressionSettings())
    assert bad.status == "regression" and bad.regressions == reasons and len(reasons) == 2
    assert bad.notes == ["regression baseline: run base"]
    good = make_run("good", {"hit@k": [1.0] * 20})
    assert apply_gate(good, base, RegressionSettings()) == [] and good.status == "ok"
    failed = make_run("failed", {"hit@k": [0.0] * 20})
    failed.status = "failed"
    apply_gate(failed, None, RegressionSettings())
    assert failed.status == "failed" and failed.regressions


def test_failure_reasons_say_why_a_question_failed() -> None:
    def q(metrics: dict[str, float | None] | None = None, **kw: Any) -> QuestionResult:
        return QuestionResult(case_id="q", question="?", **kw,
                              metrics={k: MetricValue(value=v, method="offline") for k, v in (metrics or {}).items()})

    assert failure_reason(q(metrics={"hit@k": 1.0, "faithfulness": 0.9})) is None
    assert failure_reason(q(error="TimeoutError: slow")) == "error: TimeoutError: slow"
    assert failure_reason(q(metrics={"hit@k": 0.0}, abstained=True)) == \
        "missed gold document (none in the top k); wrong abstention: abstained on an answerable question"
    assert failure_reason(q(answerable=False, metrics={"hit@k": None})) == \
        "wrong abstention: answered an unanswerable question"
    assert failure_reason(q(answerable=False, abstained=True, metrics={"hit@k": None})) is None
    assert failure_reason(q(metrics={"hit@k": 1.0, "faithfulness": 0.25, "faithfulness_judge": 0.1},
                            error="judge faithfulness: request timed out after 1s")) == \
        "low faithfulness 0.25; low faithfulness_judge 0.10; error: judge faithfulness: request timed out after 1s"


def test_aggregates_leave_undefined_values_out_and_group_by_tag() -> None:
    run = make_run("r", {"hit@k": [1.0, 0.0, None, 1.0], "faithfulness": [0.5, None, None, 1.0]}, errors=1)
    hit = run.aggregates["hit@k"]
    assert (hit.mean, hit.n, hit.n_undefined, hit.method) == (pytest.approx(2 / 3), 3, 2, "offline:hit@k")
    assert hit.low is not None and hit.high is not None and hit.low <= 2 / 3 <= hit.high
    assert list(run.aggregates) == ["hit@k", "faithfulness", "latency_ms"]
    assert run.aggregates["latency_ms"].mean == pytest.approx(101.5) and run.aggregates["latency_ms"].n == 4
    groups = aggregate_groups(run.results, lambda r: r.tags)
    assert set(groups) == {"even", "odd"}
    assert groups["even"]["hit@k"].mean == pytest.approx(1.0)  # q00 1.0, q02 None
    assert groups["odd"]["hit@k"].mean == pytest.approx(0.5)
    assert aggregate([]) == {}
