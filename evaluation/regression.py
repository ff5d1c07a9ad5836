"""Judging runs: per-question failure, the aggregates, and the regression gate.

Aggregates (:func:`aggregate`): per metric, the mean over the questions where it is defined
(None values - a metric that does not apply, a question that crashed - are counted apart as
``n_undefined``) with a seeded percentile-bootstrap 95 % interval; also ``latency_ms`` (lower is
better; never gated). Metric names are the keys of ``EvalRun.aggregates`` (:data:`KNOWN_METRICS`).

The gate (:func:`check`, :func:`apply_gate`), thresholds ``NEWSRAG_EVAL_*``:

* **floors** - ``min_hit_at_k``, ``min_faithfulness``, ``min_abstention_accuracy``, plus any
  metric in ``floors`` (JSON, e.g. ``NEWSRAG_EVAL_FLOORS='{"ndcg@k": 0.5}'``): the run's mean
  must not be below. A metric the run did not measure (no defined value) is not checked.
* **drops** - for every metric of ``watch``: a drop of more than ``max_drop`` (absolute, in the
  metric's own 0..1 units) from the baseline that is *beyond noise*. When the runs share questions
  (the same set, or a ``--sample`` of the baseline's), the per-question values of the shared ones
  are compared with :func:`newsrag.evaluation.stats.paired_bootstrap_diff` and a drop counts only when the
  interval's upper bound is below 0 and the mean drop exceeds ``max_drop``. Without shared
  questions, the two runs' bootstrap intervals must not overlap.
* **crashes** - more than ``max_error_rate`` of the questions failed before any metric was
  computed (a run that measured nothing must not pass the floors by default).

Unknown metric names in ``floors`` or ``watch`` raise :class:`ConfigError` naming them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from newsrag.core.errors import ConfigError
from newsrag.core.settings import defaults
from newsrag.evaluation.models import Aggregate, EvalRun, QuestionResult
from newsrag.evaluation.stats import bootstrap_ci, paired_bootstrap_diff

RETRIEVAL_METRICS = ("hit@k", "recall@k", "mrr", "ndcg@k")
OFFLINE_ANSWER_METRICS = ("faithfulness", "answer_relevance", "correctness", "answer_first",
                          "citation_precision", "abstention_accuracy")
JUDGE_SUFFIX = "_judge"
JUDGE_METRICS = tuple(f"{m}{JUDGE_SUFFIX}" for m in ("faithfulness", "answer_relevance", "correctness",
                                                     "citation_precision", "abstention_accuracy"))
KNOWN_METRICS = RETRIEVAL_METRICS + OFFLINE_ANSWER_METRICS + JUDGE_METRICS
HEADLINE_METRICS = ("hit@k", "recall@k", "mrr", "ndcg@k", "faithfulness", "answer_relevance",
                    "correctness", "answer_first", "citation_precision", "abstention_accuracy")
LOW_FAITHFULNESS = 0.5  # a question whose answer is less faithful than this counts as failed
LATENCY = "latency_ms"  # an aggregate of QuestionResult.latency_ms, not a gated metric
FLOOR_FIELDS = {"min_hit_at_k": "hit@k", "min_faithfulness": "faithfulness",
                "min_abstention_accuracy": "abstention_accuracy"}


def check_metric_names(names: Sequence[str], where: str) -> None:
    """ConfigError naming every name that is not in :data:`KNOWN_METRICS`."""
    unknown = [n for n in names if n not in KNOWN_METRICS]
    if unknown:
        raise ConfigError(f"{where}: unknown metric name(s) {', '.join(map(repr, unknown))}; "
                          f"known: {', '.join(KNOWN_METRICS)}")


class RegressionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_EVAL_", extra="ignore")

    min_hit_at_k: float = Field(0.6, ge=0, le=1)
    min_faithfulness: float = Field(0.5, ge=0, le=1)
    min_abstention_accuracy: float = Field(0.5, ge=0, le=1)
    floors: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)  # metric -> floor
    max_drop: float = Field(0.05, ge=0, le=1)
    watch: Annotated[tuple[str, ...], NoDecode] = HEADLINE_METRICS  # metrics checked for drops
    max_error_rate: float = Field(0.2, ge=0, le=1)
    n_resamples: int = Field(1000, ge=100)

    @field_validator("floors", mode="before")
    @classmethod
    def _parse_floors(cls, v: Any) -> Any:
        if not isinstance(v, str):
            return v
        try:
            return json.loads(v) if v.strip() else {}
        except ValueError:
            raise ConfigError('NEWSRAG_EVAL_FLOORS: expected a JSON object such as {"ndcg@k": 0.5}') from None

    @field_validator("floors")
    @classmethod
    def _known_floor_names(cls, v: dict[str, float]) -> dict[str, float]:
        check_metric_names(list(v), "NEWSRAG_EVAL_FLOORS")
        return v

    @field_validator("watch", mode="before")
    @classmethod
    def _split_watch(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = json.loads(v) if v.strip().startswith("[") else [p.strip() for p in v.split(",") if p.strip()]
        check_metric_names(list(v), "NEWSRAG_EVAL_WATCH")
        return v

    def all_floors(self) -> dict[str, tuple[float, str]]:
        """metric -> (floor, the setting that set it)."""
        out = {metric: (float(getattr(self, name)), f"NEWSRAG_EVAL_{name.upper()}")
               for name, metric in FLOOR_FIELDS.items()}
        out.update({m: (float(v), "NEWSRAG_EVAL_FLOORS") for m, v in self.floors.items()})
        return out


def metric_value(r: QuestionResult, name: str) -> float | None:
    m = r.metrics.get(name)
    return m.value if m is not None else None


def failure_reason(r: QuestionResult) -> str | None:
    """Why one question counts as failed (reasons joined with "; "), None when it did not: an
    error, a missed gold document, a wrong abstention, a low faithfulness."""
    if r.error and not r.metrics:
        return f"error: {r.error}"
    reasons = []
    if metric_value(r, "hit@k") == 0.0:
        reasons.append("missed gold document (none in the top k)")
    if r.answerable and r.abstained:
        reasons.append("wrong abstention: abstained on an answerable question")
    elif not r.answerable and not r.abstained:
        reasons.append("wrong abstention: answered an unanswerable question")
    for name in ("faithfulness", "faithfulness" + JUDGE_SUFFIX):
        value = metric_value(r, name)
        if value is not None and value < LOW_FAITHFULNESS:
            reasons.append(f"low {name} {value:.2f}")
    if r.error:
        reasons.append(f"error: {r.error}")
    return "; ".join(reasons) or None


def _aggregate(values: Sequence[float | None], method: str) -> Aggregate:
    ci = bootstrap_ci(values)
    n = sum(v is not None for v in values)
    return Aggregate(mean=ci.point if ci else None, low=ci.low if ci else None, high=ci.high if ci else None,
                     n=n, n_undefined=len(values) - n, method=method)


def aggregate(results: Sequence[QuestionResult]) -> dict[str, Aggregate]:
    """Per metric (known ones in :data:`KNOWN_METRICS` order, then others, then ``latency_ms``):
    mean of the defined values with its bootstrap interval; ``method`` is the most common one."""
    seen = list(dict.fromkeys(name for r in results for name in r.metrics))
    names = [n for n in KNOWN_METRICS if n in seen] + [n for n in seen if n not in KNOWN_METRICS]
    out = {}
    for name in names:
        methods = Counter(r.metrics[name].method for r in results if name in r.metrics)
        out[name] = _aggregate([metric_value(r, name) for r in results], methods.most_common(1)[0][0])
    if any(r.latency_ms is not None for r in results):
        out[LATENCY] = _aggregate([r.latency_ms for r in results], "timing:answer_total_ms")
    return out


def aggregate_groups(results: Sequence[QuestionResult], key: Callable[[QuestionResult], Iterable[str]]
                     ) -> dict[str, dict[str, Aggregate]]:
    """:func:`aggregate` per group (a question may be in several groups, e.g. its tags)."""
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        for k in key(r):
            groups.setdefault(k, []).append(r)
    return {k: aggregate(groups[k]) for k in sorted(groups)}


def _crashed(r: QuestionResult) -> bool:
    return r.error is not None and not r.metrics


def _values(results: Sequence[QuestionResult], metric: str) -> dict[str, float | None]:
    return {r.case_id: metric_value(r, metric) for r in results}


def check(run: EvalRun, baseline: EvalRun | None, settings: RegressionSettings | None = None) -> list[str]:
    """Human-readable reasons why ``run`` is a regression (empty when it is not)."""
    settings = settings or defaults(RegressionSettings)
    reasons: list[str] = []
    crashed = [str(r.error) for r in run.results if _crashed(r)]
    if run.results and len(crashed) / len(run.results) > settings.max_error_rate:
        reasons.append(f"{len(crashed)} of {len(run.results)} questions failed with an error (more than "
                       f"{settings.max_error_rate:.0%}, NEWSRAG_EVAL_MAX_ERROR_RATE); most common: "
                       f"{Counter(crashed).most_common(1)[0][0][:300]}")
    for metric, (floor, variable) in settings.all_floors().items():
        agg = run.aggregates.get(metric)
        if agg is not None and agg.mean is not None and agg.mean < floor:
            reasons.append(f"{metric} {agg.mean:.3f} is below the floor {floor:.3f} ({variable})")
    if baseline is not None and baseline.run_id != run.run_id:
        for metric in settings.watch:
            reason = _drop(run, baseline, metric, settings)
            if reason:
                reasons.append(reason)
    return reasons


def _drop(run: EvalRun, baseline: EvalRun, metric: str, settings: RegressionSettings) -> str | None:
    cur, base = run.aggregates.get(metric), baseline.aggregates.get(metric)
    if cur is None or base is None or cur.mean is None or base.mean is None:
        return None
    where = f"vs run {baseline.run_id}"
    cur_values, base_values = _values(run.results, metric), _values(baseline.results, metric)
    shared = [i for i in cur_values if i in base_values]
    if shared:
        d = paired_bootstrap_diff([base_values[i] for i in shared], [cur_values[i] for i in shared],
                                  n_resamples=settings.n_resamples)
        if d is None or not (d.high < 0 and -d.diff > settings.max_drop):
            return None
        over = "" if set(cur_values) == set(base_values) else f" over {len(shared)} shared questions"
        return (f"{metric} dropped {base.mean:.3f} -> {cur.mean:.3f} {where} (paired diff{over} {d.diff:+.3f}, "
                f"95% CI [{d.low:+.3f}, {d.high:+.3f}]; max drop {settings.max_drop:.3f})")
    drop = base.mean - cur.mean
    if drop <= settings.max_drop or cur.high is None or base.low is None or cur.high >= base.low:
        return None
    return (f"{metric} dropped {base.mean:.3f} -> {cur.mean:.3f} {where} (different questions: intervals "
            f"[{cur.low:.3f}, {cur.high:.3f}] and [{base.low:.3f}, {base.high:.3f}] do not overlap; "
            f"max drop {settings.max_drop:.3f})")


def apply_gate(run: EvalRun, baseline: EvalRun | None, settings: RegressionSettings | None = None) -> list[str]:
    """:func:`check`, recorded on the run: ``regressions`` set and ``status`` "regression" when any
    (a "failed" run stays failed)."""
    reasons = check(run, baseline, settings)
    run.regressions = reasons
    if baseline is not None:
        run.notes = [n for n in run.notes if not n.startswith("regression baseline:")]
        run.notes.append(f"regression baseline: run {baseline.run_id}")
    if reasons and run.status != "failed":
        run.status = "regression"
    return reasons
