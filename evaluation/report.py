"""The evaluation report: ``write_report`` writes ``out_dir/<run_id>/report.html`` (self-contained:
inline CSS and SVG charts, no script, a CSP that loads nothing; run text escaped by autoescape) and
``report.json`` (the run, secrets-named keys redacted), then regenerates ``out_dir/index.html``.

``history`` is duck-typed and optional: ``previous(run)``, ``best(metric)``, ``trend(metric, limit)``
are used when present; anything missing or raising comes from the reports in ``out_dir`` (same
golden set, earlier, not failed). ``best`` means "highest mean", so for latency it comes from disk.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from newsrag.evaluation.arms import SCORE_METRICS, breakdown_by_arm
from newsrag.evaluation.charts import Point, forest_chart, trend_chart
from newsrag.evaluation.models import Aggregate, EvalRun, QuestionResult
from newsrag.evaluation.stats import paired_bootstrap_diff
from newsrag.infra.redaction import is_secret_name

log = logging.getLogger(__name__)

KNOWN_METRICS = ("hit@k", "recall@k", "mrr", "ndcg@k", "faithfulness", "answer_relevance",
                 "correctness", "answer_first", "citation_precision", "abstention_accuracy", "latency_ms")
LABELS = {"hit@k": "Hit@k", "recall@k": "Recall@k", "mrr": "MRR", "ndcg@k": "nDCG@k",
          "faithfulness": "Faithfulness", "answer_relevance": "Answer relevance",
          "correctness": "Correctness", "answer_first": "Answer first", "citation_precision": "Citation precision",
          "abstention_accuracy": "Abstention accuracy", "latency_ms": "Latency"}
LOWER_IS_BETTER = frozenset({"latency_ms"})
NO_TEMPLATE = frozenset({"n/a", ""})  # the prompt version of a generator without a template
INDEX_METRICS = ("hit@k", "faithfulness", "abstention_accuracy")
WORST_N, TREND_LIMIT, CHANGED_LIMIT, ARM_RUNS = 10, 30, 30, 100
TEMPLATES = Path(__file__).resolve().parent / "templates"
_EPS = 1e-9


def metric_order(names: Iterable[str]) -> list[str]:
    """Known metrics in :data:`KNOWN_METRICS` order (``*_judge`` after its base), then the rest by name."""
    def rank(name: str) -> tuple[int, str, bool]:
        base = name.removesuffix("_judge")
        i = KNOWN_METRICS.index(base) if base in KNOWN_METRICS else len(KNOWN_METRICS)
        return (i, base if i == len(KNOWN_METRICS) else "", name != base)
    return sorted(set(names), key=rank)


def label(metric: str) -> str:
    base = metric.removesuffix("_judge")
    return LABELS.get(base, base.replace("_", " ").capitalize()) + (" (judge)" if base != metric else "")


def lower_is_better(metric: str) -> bool:
    return metric.removesuffix("_judge") in LOWER_IS_BETTER or metric.endswith("_ms")


def fmt(value: float | None, metric: str = "") -> str:
    return "—" if value is None else f"{value:,.0f} ms" if lower_is_better(metric) else f"{value:.3f}"


def fmt_delta(diff: float, metric: str = "") -> str:
    return (f"{diff:+,.0f} ms" if lower_is_better(metric) else f"{diff:+.3f}").replace("-", "\u2212")


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _when(dt: datetime | None) -> str:
    return _aware(dt).strftime("%Y-%m-%d %H:%M UTC") if dt else "—"


def _slug(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip(".") or "run"


def _snippet(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _qv(q: QuestionResult, metric: str) -> float | None:
    mv = q.metrics.get(metric)
    return mv.value if mv is not None else q.latency_ms if metric == "latency_ms" else None


def _mean(run: EvalRun | None, metric: str) -> float | None:
    return agg.mean if run is not None and (agg := run.aggregates.get(metric)) else None


def _scrub(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: "[redacted]" if isinstance(k, str) and is_secret_name(k) and v
                else _scrub(v) for k, v in obj.items()}
    return [_scrub(v) for v in obj] if isinstance(obj, list) else obj


def _reports(out_dir: Path) -> list[tuple[Path, EvalRun]]:
    found = []
    for path in Path(out_dir).glob("*/report.json"):
        try:
            found.append((path.parent, EvalRun.model_validate_json(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable report %s: %s", path, exc)
    return sorted(found, key=lambda pr: (_aware(pr[1].started_at), pr[1].run_id))


def runs_in(out_dir: Path) -> list[EvalRun]:
    """Every run with a readable ``report.json`` under ``out_dir``, oldest first."""
    return [run for _, run in _reports(out_dir)]


def _ask(history: Any, name: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """``(True, history.name(*args, **kwargs))``, or ``(False, None)`` when absent or broken."""
    fn = getattr(history, name, None)
    try:
        return (True, fn(*args, **kwargs)) if callable(fn) else (False, None)
    except Exception as exc:  # noqa: BLE001 - a broken history must not cost us the report
        log.warning("history.%s failed, using the reports on disk: %s", name, exc)
        return False, None


def _earlier(run: EvalRun, runs: list[EvalRun]) -> list[EvalRun]:
    return [r for r in runs if r.run_id != run.run_id and r.status != "failed"
            and r.golden_sha256 == run.golden_sha256 and _aware(r.started_at) < _aware(run.started_at)]


def _best(metric: str, run: EvalRun, history: Any, runs: list[EvalRun]) -> EvalRun | None:
    asked, best = (False, None) if lower_is_better(metric) else _ask(history, "best", metric)
    sign = -1 if lower_is_better(metric) else 1
    return best if asked else max((r for r in _earlier(run, runs) if _mean(r, metric) is not None),
               key=lambda r: sign * (_mean(r, metric) or 0.0), default=None)


def _trend(metric: str, run: EvalRun, history: Any, runs: list[EvalRun]) -> list[Point]:
    """Earlier runs' means (with intervals when known) oldest first, then this run's."""
    asked, points = _ask(history, "trend", metric, TREND_LIMIT)
    pts: list[Point]
    if asked and points is not None:
        pts = [(_aware(t), float(v), None, None) for t, v in points if v is not None]
    else:
        pts = [(_aware(r.started_at), a.mean, a.low, a.high) for r in _earlier(run, runs)
               if (a := r.aggregates.get(metric)) is not None and a.mean is not None]
    now, agg = _aware(run.started_at), run.aggregates.get(metric)
    if agg is None or agg.mean is None:
        return []
    earlier = sorted((p for p in pts if (now - p[0]).total_seconds() >= 1), key=lambda p: p[0])  # this run comes last
    return [*earlier[-(TREND_LIMIT - 1):], (now, agg.mean, agg.low, agg.high)]


def _trend_chart(metric: str, pts: list[Point], uid: str) -> Markup:
    return trend_chart(pts, f"{label(metric)} over the last {len(pts)} run(s); this run highlighted",
                       fmt(pts[-1][1], metric).removesuffix(" ms"), uid, unit=not lower_is_better(metric))


def _forest_chart(rows: list[dict[str, Any]], uid: str) -> Markup | None:
    bars = [(label(r["metric"]), r["paired"].diff, r["paired"].low, r["paired"].high, r["cls"]) for r in rows
            if r["paired"] is not None and not lower_is_better(r["metric"])]
    return forest_chart(bars, "Paired bootstrap differences per metric with 95% intervals",
                        "paired difference (this run − baseline), 95% CI", uid)


def _delta(run: EvalRun, other: EvalRun | None, metric: str) -> dict[str, Any] | None:
    mine, theirs = _mean(run, metric), _mean(other, metric)
    if other is None or mine is None or theirs is None:
        return None
    diff, flat = mine - theirs, abs(mine - theirs) < _EPS
    better = diff < 0 if lower_is_better(metric) else diff > 0
    return {"value": diff, "text": fmt_delta(diff, metric), "run_id": other.run_id,
            "same": other.run_id == run.run_id, "arrow": "→" if flat else "▲" if diff > 0 else "▼",
            "cls": "flat" if flat else "good" if better else "bad"}


def _cards(run: EvalRun, history: Any, runs: list[EvalRun]) -> list[dict[str, Any]]:
    asked, prev = _ask(history, "previous", run)
    prev = prev if asked else ([None, *_earlier(run, runs)])[-1]
    cards = []
    for m in metric_order(run.aggregates):
        agg = run.aggregates[m]
        unit = not lower_is_better(m) and all(v is None or 0 <= v <= 1 for v in (agg.mean, agg.low, agg.high))
        cards.append({"metric": m, "agg": agg, "bar": unit and agg.mean is not None,
                      "vs_prev": _delta(run, prev, m), "vs_best": _delta(run, _best(m, run, history, runs), m)})
    return cards


def _heat(agg: Aggregate | None, metric: str, means: list[float]) -> dict[str, str]:
    """A cell from red (weak) to green (strong): by value for 0..1 metrics, else within its column."""
    v, lo, hi = agg.mean if agg else None, min(means, default=0.0), max(means, default=0.0)
    cell = {"text": fmt(v, metric), "style": "",
            "title": f"n={agg.n}, undefined={agg.n_undefined}" if agg else ""}
    if v is not None:
        lower = lower_is_better(metric)
        t = v if not lower and 0 <= lo and hi <= 1 else 0.5 if hi - lo < _EPS else (hi - v if lower else v - lo) / (hi - lo)
        t = min(1.0, max(0.0, t))
        cell["style"] = f"background: hsl({8 + 132 * t:.0f}, {62 - 12 * t:.0f}%, {91 - 2 * t:.0f}%)"
    return cell


def _breakdown(groups: Mapping[str, Mapping[str, Aggregate]], counts: Mapping[str, int]) -> dict[str, Any]:
    metrics = metric_order(m for aggs in groups.values() for m in aggs)
    means = {m: [a.mean for aggs in groups.values() if (a := aggs.get(m)) and a.mean is not None]
             for m in metrics}
    rows = [{"name": name, "n": counts.get(name) or max((a.n + a.n_undefined for a in aggs.values()), default=0),
             "cells": [_heat(aggs.get(m), m, means[m]) for m in metrics]}
            for name, aggs in sorted(groups.items())]
    return {"metrics": [{"key": m, "label": label(m)} for m in metrics], "rows": rows}


def _worst_key(q: QuestionResult) -> tuple[Any, ...]:
    """Errors, failures, the rest; then lowest faithfulness, nDCG (n/a after any real value)."""
    faith, ndcg = _qv(q, "faithfulness"), _qv(q, "ndcg@k")
    return (0 if q.error else 1 if q.failure_reason else 2, faith is None, faith or 0.0,
            ndcg is None, ndcg or 0.0, q.case_id)


def _web_url(url: Any) -> str | None:
    """Only an http(s) URL becomes a link (never ``javascript:`` and the like)."""
    return url if isinstance(url, str) and re.match(r"https?://", url, re.IGNORECASE) else None


def templated(run: EvalRun) -> bool:
    """Whether the run's answers came from a prompt template: a generator that renders none (the
    extractive one) records its own name and version "n/a", which reads "vn/a" if shown as a version."""
    return run.prompt_version not in NO_TEMPLATE


def prompt_text(run: EvalRun) -> str:
    """``news-answer v3``, or ``no template (extractive)``."""
    return f"{run.prompt_name} v{run.prompt_version}" if templated(run) else f"no template ({run.prompt_name})"


def _arm(run: EvalRun) -> str:
    return prompt_text(run) + (f" · arm {run.prompt_arm}" if run.prompt_arm else "")


def _changes(qa: QuestionResult, qb: QuestionResult) -> tuple[list[dict[str, str]], float]:
    """What changed from baseline ``qa`` to ``qb`` (not latency: always noise), and the worst drop."""
    changes, worst = [], 0.0
    for m in metric_order(set(qa.metrics) | set(qb.metrics)):
        va, vb = _qv(qa, m), _qv(qb, m)
        if lower_is_better(m) or va == vb or (va is not None and vb is not None and abs(vb - va) < _EPS):
            continue
        d = None if va is None or vb is None else vb - va
        worst = min(worst, d or 0.0)
        changes.append({"label": label(m), "a": fmt(va, m), "b": fmt(vb, m),
                        "delta": "" if d is None else fmt_delta(d, m),
                        "cls": "flat" if d is None else "good" if d > 0 else "bad"})
    if qa.abstained != qb.abstained:
        changes.append({"label": "abstained", "a": "yes" if qa.abstained else "no",
                        "b": "yes" if qb.abstained else "no", "delta": "", "cls": "flat"})
    return changes, worst


def _comparison(run: EvalRun, base: EvalRun) -> dict[str, Any]:
    mine, theirs = {q.case_id: q for q in run.results}, {q.case_id: q for q in base.results}
    shared = [cid for cid in mine if cid in theirs]
    rows = []
    for m in metric_order(set(run.aggregates) | set(base.aggregates)):
        a, b = _mean(base, m), _mean(run, m)  # the aggregates; the paired CI uses the shared cases
        paired = paired_bootstrap_diff([_qv(theirs[c], m) for c in shared], [_qv(mine[c], m) for c in shared],
                                       n_resamples=2000) if shared else None
        verdict, cls = ("", "flat") if paired is None else ("no clear difference", "flat") if (
            paired.low <= 0 <= paired.high) else ("better", "good") if (
            paired.diff < 0) == lower_is_better(m) else ("worse", "bad")
        rows.append({"metric": m, "label": label(m), "base": fmt(a, m), "run": fmt(b, m),
                     "delta": _delta(run, base, m), "paired": paired,
                     "ci": paired and f"{fmt_delta(paired.low, m)} … {fmt_delta(paired.high, m)}",
                     "verdict": verdict, "cls": cls})
    diffs = {cid: _changes(theirs[cid], mine[cid]) for cid in shared}
    changed = sorted(({"case_id": cid, "question": _snippet(mine[cid].question, 160), "changes": ch,
                       "worst": worst} for cid, (ch, worst) in diffs.items() if ch),
                     key=lambda r: (r["worst"], r["case_id"]))
    return {"base": base, "rows": rows,
            "n_shared": len(shared), "changed": changed[:CHANGED_LIMIT], "n_changed": len(changed),
            "chart": _forest_chart(rows, "cmp")}


def _methods(*runs: EvalRun | None) -> list[dict[str, Any]]:
    found: dict[str, set[str]] = {}
    for run in filter(None, runs):
        for m, agg in run.aggregates.items():
            found.setdefault(m, set()).update({agg.method} - {""})
        for q in run.results:
            for m, mv in q.metrics.items():
                found.setdefault(m, set()).add(mv.method)
    return [{"metric": m, "label": label(m), "methods": sorted(found[m]),
             "direction": "lower is better" if lower_is_better(m) else "higher is better"}
            for m in metric_order(found)]


@cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=fmt, label=label, when=_when, arm=_arm, snippet=_snippet, web_url=_web_url,
                       qv=_qv)
    env.tests["templated"] = templated
    return env


def _write(path: Path, text: str) -> None:
    (tmp := path.with_name(path.name + ".tmp")).write_text(text, encoding="utf-8")
    tmp.replace(path)  # readers (the index, a browser) never see half a file


def report_dir(out_dir: Path, run_id: str) -> Path:
    """The folder of one run's report (its id made safe as a folder name)."""
    return Path(out_dir) / _slug(run_id)


def _arm_rows(run: EvalRun, history: Any, runs: list[EvalRun], feedback: Sequence[Any]) -> list[dict[str, Any]]:
    """Live feedback and the latest offline scores per prompt version and arm: the runs on this
    golden set that did not fail (the history's, else the reports in out_dir), and this run."""
    asked, known = _ask(history, "list_runs", ARM_RUNS, golden_sha256=run.golden_sha256)
    pool = [r for r in (known if asked and known is not None else runs)
            if r.golden_sha256 == run.golden_sha256 and r.status != "failed" and r.run_id != run.run_id]
    return breakdown_by_arm(feedback, [*pool, run])


def write_report(run: EvalRun, history: Any | None, out_dir: Path,
                 compare_run: EvalRun | None = None, feedback: Sequence[Any] | None = None) -> Path:
    """Write ``out_dir/<run_id>/report.html`` and ``report.json`` (the run, plus ``arms``: live
    feedback and offline scores per prompt version and A/B arm), refresh ``out_dir/index.html``;
    return the report's path. ``compare_run`` is the baseline of the comparison section;
    ``feedback``: the app's FeedbackStore records."""
    data = _scrub(run.model_dump(mode="json"))
    run = EvalRun.model_validate(data)
    run_dir = report_dir(out_dir, run.run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    runs, qs = runs_in(Path(out_dir)), run.results
    arms = {"metrics": list(SCORE_METRICS), "rows": _arm_rows(run, history, runs, feedback or [])}
    _write(run_dir / "report.json", json.dumps({**data, "arms": arms}, indent=2, ensure_ascii=False) + "\n")
    base = EvalRun.model_validate(_scrub(compare_run.model_dump(mode="json"))) if compare_run else None
    trends = [{"metric": m, "label": label(m), "n": len(pts), "svg": len(pts) > 1 and _trend_chart(m, pts, f"t{i}")}
              for i, m in enumerate(metric_order(run.aggregates)) if (pts := _trend(m, run, history, runs))]
    html = _env().get_template("report.html.j2").render(
        run=run, cards=_cards(run, history, runs), trends=trends,
        per_tag=_breakdown(run.per_tag, Counter(t for q in qs for t in q.tags)),
        per_type=_breakdown(run.per_type, Counter(q.type for q in qs)),
        worst=sorted(qs, key=_worst_key)[:WORST_N], comparison=_comparison(run, base) if base else None,
        methods=_methods(run, base), generated_at=datetime.now(UTC), arms=arms)
    _write(path := run_dir / "report.html", html)
    write_index(Path(out_dir))
    return path


def write_index(out_dir: Path) -> Path:
    """``out_dir/index.html``: every run found under ``out_dir``, newest first."""
    rows = [{"href": f"{folder.name}/report.html", "run": run,
             "metrics": [fmt(_mean(run, m), m) for m in INDEX_METRICS]}
            for folder, run in reversed(_reports(out_dir))]
    html = _env().get_template("index.html.j2").render(
        rows=rows, metrics=[label(m) for m in INDEX_METRICS], generated_at=datetime.now(UTC))
    _write(path := Path(out_dir) / "index.html", html)
    return path
