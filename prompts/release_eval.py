"""The evaluation half of a prompt release: ONE index snapshot and one question list (``snapshot``)
shared by the active and the candidate evaluation (``evaluate``, once per role), then the
comparison (``compare``): the regression gate's paired bootstrap intervals decide, and the result
lists every headline metric's paired difference with its 95 % interval.

Both runs are saved to the evaluation history with the same golden set hash and index snapshot. An
evaluation refuses to record a snapshot the index no longer matches (an ingestion ran in between),
so the two versions are never compared on different data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsrag.core.errors import NewsragError
from newsrag.core.settings import load
from newsrag.prompts.release import ReleaseSettings, opened_registry
from newsrag.retrieval.generators import PromptRef
from newsrag.store.protocol import ChunkStore


class ReleaseError(NewsragError):
    """The release cannot compare the versions fairly (the data changed under it); nothing changed."""


@contextmanager
def _clients() -> Iterator[tuple[Any, Any]]:
    from newsrag.embeddings import create_embedder
    from newsrag.store.weaviate import WeaviateStore

    embedder = create_embedder()
    with WeaviateStore() as store:
        yield store, embedder


def snapshot(checked: dict[str, Any]) -> dict[str, Any]:
    """The plan both evaluations share: golden set (path and sha256), the question ids (all, or the
    seeded ``NEWSRAG_RELEASE_SAMPLE``) and one index snapshot."""
    from newsrag.embeddings.base import vector_name
    from newsrag.evaluation.golden import load_golden
    from newsrag.evaluation.history import EvalSettings
    from newsrag.evaluation.runner import select_case_ids, snapshot_index

    settings = load(ReleaseSettings)
    golden = load_golden(settings.golden or load(EvalSettings).golden_path)
    with _clients() as (store, embedder):
        index = snapshot_index(store, vector_name(embedder.model_id))
    return {**checked, "golden": str(golden.path), "golden_sha256": golden.sha256, "sample": settings.sample,
            "case_ids": select_case_ids(golden, settings.sample), "index": index.model_dump(mode="json")}


def index_moved(store: ChunkStore, planned: Any) -> str | None:
    """Why the store no longer matches the planned snapshot (None when it does)."""
    from newsrag.retrieval.search import as_datetime

    count = store.count() if store.exists() else 0
    newest = as_datetime(store.newest_ingested_at())
    if (count, newest) == (planned.object_count, planned.last_ingest_at) or (
            count == planned.object_count and newest is None):
        return None
    return (f"collection {planned.collection} changed during the release ({planned.object_count} objects, newest "
            f"{planned.last_ingest_at} -> {count}, {newest}); run the release again")


def evaluate(plan: dict[str, Any], role: str) -> dict[str, Any] | None:
    """Evaluate ``plan[role]`` ("active" or "candidate") on the plan's questions and snapshot and save
    the run; None when there is no such version (no active one yet)."""
    from newsrag.evaluation.finish import redact_run
    from newsrag.evaluation.golden import load_golden
    from newsrag.evaluation.history import EvalSettings, HistoryStore
    from newsrag.evaluation.models import IndexSnapshot
    from newsrag.evaluation.runner import (
        answerer_info,
        assemble_run,
        evaluate_batch,
        make_setup,
        retrieval_from_settings,
    )

    version = plan.get(role)
    if version is None:
        return None
    golden = load_golden(plan["golden"])
    if golden.sha256 != plan["golden_sha256"]:
        raise ReleaseError(f"golden set {plan['golden']} changed during the release; run the release again")
    index, started = IndexSnapshot(**plan["index"]), datetime.now(UTC)
    with _clients() as (store, embedder), opened_registry() as reg:
        t = reg.template(plan["name"], version)
        setup = make_setup(store, embedder, retrieval_from_settings(), generator=load(ReleaseSettings).generator,
                           prompt=PromptRef(t.name, t.version, t.system, t.user))
        results = evaluate_batch(plan["case_ids"], golden, setup)
        if moved := index_moved(store, index):
            raise ReleaseError(moved)
    run = assemble_run(results, golden, index=index, retrieval=setup.retrieval, info=answerer_info(setup.answerer),
                       started_at=started, sample=plan["sample"],
                       notes=[f"prompt release: {role} {plan['name']}@{version} vs {plan['candidate']}"])
    errored = errored_reason(run.results)
    if errored:  # the generator failed, not the template: keep the run apart, decide nothing
        run.status = "failed"
        run.notes.append(f"errored: {errored}")
    with HistoryStore(load(EvalSettings).history_location()) as hist:
        hist.save(redact_run(run))
    if errored:
        generator = load(ReleaseSettings).generator
        raise ReleaseError(f"the {role} evaluation of {plan['name']}@{version} errored ({errored}); run "
                           f"{run.run_id} is saved with status failed and nothing was decided: check "
                           f"NEWSRAG_RELEASE_GENERATOR={generator} and its settings, then run the release again")
    return {"role": role, "version": version, "run_id": run.run_id}


def errored_reason(results: list[Any]) -> str | None:
    """Why a run says more about its generator than its template: more questions crashed (an error
    and no metric) than the gate's NEWSRAG_EVAL_MAX_ERROR_RATE allows. None when it did not."""
    from collections import Counter

    from newsrag.evaluation.regression import RegressionSettings

    crashed = [str(r.error) for r in results if r.error is not None and not r.metrics]
    if not results or len(crashed) / len(results) <= load(RegressionSettings).max_error_rate:
        return None
    return f"{len(crashed)} of {len(results)} questions failed with an error; most common: " \
           f"{Counter(crashed).most_common(1)[0][0][:300]}"


def compare(plan: dict[str, Any], active: dict[str, Any] | None, candidate: dict[str, Any],
            out_dir: str | None = None) -> dict[str, Any]:
    """Gate the candidate's run against the active version's (paired bootstrap intervals over the
    shared questions) and write the comparison report."""
    from newsrag.evaluation.finish import redact_run
    from newsrag.evaluation.history import EvalSettings, HistoryStore
    from newsrag.evaluation.regression import RegressionSettings, apply_gate
    from newsrag.evaluation.report import write_report

    eval_settings, gate = load(EvalSettings), load(RegressionSettings)
    with HistoryStore(eval_settings.history_location()) as hist:
        cand = _run(hist, candidate["run_id"])
        base = _run(hist, active["run_id"]) if active else None
        if base is not None and (base.index, base.golden_sha256) != (cand.index, cand.golden_sha256):
            raise ReleaseError(f"runs {base.run_id} and {cand.run_id} were not made on the same golden set and "
                               "index snapshot")
        reasons = apply_gate(cand, base, gate)
        hist.save(redact_run(cand))
        report = write_report(cand, hist, Path(out_dir) if out_dir else eval_settings.reports_path(),
                              compare_run=base, feedback=_live_feedback())
    table = comparison(cand, base, gate.n_resamples)
    runs = {"candidate": cand.run_id, **({"active": base.run_id} if base else {})}
    return {**plan, "runs": runs, "decision": "reject" if reasons else "promote", "reasons": reasons,
            "report": str(report), "headline": {k: a.mean for k, a in cand.aggregates.items()},
            "comparison": table, "comparison_lines": comparison_lines(table)}


def comparison(candidate: Any, active: Any | None, n_resamples: int = 1000) -> dict[str, dict[str, Any]]:
    """Per headline metric: each run's mean with its bootstrap interval and, against an active run,
    the paired difference (candidate - active) over the shared questions with its 95 % interval."""
    from newsrag.evaluation.regression import HEADLINE_METRICS, metric_value
    from newsrag.evaluation.stats import paired_bootstrap_diff

    table: dict[str, dict[str, Any]] = {}
    for metric in HEADLINE_METRICS:
        cand = candidate.aggregates.get(metric)
        if cand is None or cand.mean is None:
            continue
        row: dict[str, Any] = {"candidate": [cand.mean, cand.low, cand.high]}
        base = active.aggregates.get(metric) if active is not None else None
        if active is not None and base is not None and base.mean is not None:
            row["active"] = [base.mean, base.low, base.high]
            a = {r.case_id: metric_value(r, metric) for r in active.results}
            shared = [r for r in candidate.results if r.case_id in a]
            d = paired_bootstrap_diff([a[r.case_id] for r in shared], [metric_value(r, metric) for r in shared],
                                      n_resamples=n_resamples)
            if d is not None:
                row["diff"] = [d.diff, d.low, d.high]
        table[metric] = row
    return table


def comparison_lines(table: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for metric, row in table.items():
        if "diff" in row:
            d, low, high = row["diff"]
            lines.append(f"{metric}: {row['active'][0]:.3f} -> {row['candidate'][0]:.3f} "
                         f"(paired diff {d:+.3f}, 95% CI [{low:+.3f}, {high:+.3f}])")
    return lines


def _live_feedback() -> list[Any]:
    """The app's feedback (per version and arm): the store NEWSRAG_APP_FEEDBACK_DB names, else the
    default; none when the app never wrote one, a clear error when the file is not a feedback store."""
    from newsrag.evaluation.feedback import read_feedback

    return list(read_feedback())


def _run(hist: Any, run_id: str) -> Any:
    run = hist.get(run_id)
    if run is None:
        raise NewsragError(f"evaluation run {run_id} is missing from the history")
    return run
