"""The evaluation half of a prompt release: ONE index snapshot and one question list (``snapshot``)
shared by the active and the candidate evaluation (``evaluate``, once per role), then the
comparison (``compare``): the regression gate's paired bootstrap intervals decide, and the result
lists every headline metric's paired difference with its 95 % interval.

Both runs are saved to the evaluation history with the same golden set hash and index snapshot. An
evaluation refuses to record a snapshot the index no longer matches (an ingestion ran in between),
so the two versions are never compared on different data.

Every step takes ``settings``, the root an edge built (an Airflow task's ``task_settings()``);
None means the documented defaults.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsrag.core.errors import NewsragError
from newsrag.core.settings import Settings
from newsrag.prompts.release import ReleaseSettings, opened_registry
from newsrag.retrieval.generators import PromptRef
from newsrag.store.protocol import ChunkStore

if TYPE_CHECKING:
    from newsrag.evaluation.regression import RegressionSettings


class ReleaseError(NewsragError):
    """The release cannot compare the versions fairly (the data changed under it); nothing changed."""


@contextmanager
def _clients(settings: Settings) -> Iterator[tuple[Any, Any]]:
    from newsrag.embeddings import create_embedder
    from newsrag.store.weaviate import WeaviateStore

    embedder = create_embedder(settings)
    with WeaviateStore(settings) as store:
        yield store, embedder


def snapshot(checked: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The plan both evaluations share: golden set (path and sha256), the question ids (all, or the
    seeded ``NEWSRAG_RELEASE_SAMPLE``) and one index snapshot."""
    from newsrag.embeddings.base import vector_name
    from newsrag.evaluation.golden import load_golden
    from newsrag.evaluation.history import EvalSettings
    from newsrag.evaluation.runner import select_case_ids, snapshot_index

    settings = settings or Settings({})
    release = settings.get(ReleaseSettings)
    golden = load_golden(release.golden or settings.get(EvalSettings).golden_path)
    with _clients(settings) as (store, embedder):
        index = snapshot_index(store, vector_name(embedder.model_id))
    return {**checked, "golden": str(golden.path), "golden_sha256": golden.sha256, "sample": release.sample,
            "case_ids": select_case_ids(golden, release.sample), "index": index.model_dump(mode="json")}


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


def evaluate(plan: dict[str, Any], role: str, settings: Settings | None = None) -> dict[str, Any] | None:
    """Evaluate ``plan[role]`` ("active" or "candidate") on the plan's questions and snapshot and save
    the run; None when there is no such version (no active one yet)."""
    from newsrag.evaluation.finish import redact_run
    from newsrag.evaluation.golden import load_golden
    from newsrag.evaluation.history import HistoryStore, history_location
    from newsrag.evaluation.models import IndexSnapshot
    from newsrag.evaluation.regression import RegressionSettings
    from newsrag.evaluation.runner import (
        answerer_info,
        assemble_run,
        evaluate_batch,
        make_setup,
        retrieval_from_settings,
    )
    from newsrag.retrieval.search import SearchSettings

    version = plan.get(role)
    if version is None:
        return None
    settings = settings or Settings({})
    generator = settings.get(ReleaseSettings).generator
    golden = load_golden(plan["golden"])
    if golden.sha256 != plan["golden_sha256"]:
        raise ReleaseError(f"golden set {plan['golden']} changed during the release; run the release again")
    index, started = IndexSnapshot(**plan["index"]), datetime.now(UTC)
    with _clients(settings) as (store, embedder), opened_registry(settings) as reg:
        t = reg.template(plan["name"], version)
        setup = make_setup(store, embedder, retrieval_from_settings(settings.get(SearchSettings)), generator=generator,
                           prompt=PromptRef(t.name, t.version, t.system, t.user), settings=settings)
        results = evaluate_batch(plan["case_ids"], golden, setup)
        if moved := index_moved(store, index):
            raise ReleaseError(moved)
    run = assemble_run(results, golden, index=index, retrieval=setup.retrieval, info=answerer_info(setup.answerer),
                       started_at=started, sample=plan["sample"],
                       notes=[f"prompt release: {role} {plan['name']}@{version} vs {plan['candidate']}"])
    errored = errored_reason(run.results, settings.get(RegressionSettings))
    if errored:  # the generator failed, not the template: keep the run apart, decide nothing
        run.status = "failed"
        run.notes.append(f"errored: {errored}")
    with HistoryStore(history_location(settings)) as hist:
        hist.save(redact_run(run, settings.environ))
    if errored:
        raise ReleaseError(f"the {role} evaluation of {plan['name']}@{version} errored ({errored}); run "
                           f"{run.run_id} is saved with status failed and nothing was decided: check "
                           f"NEWSRAG_RELEASE_GENERATOR={generator} and its settings, then run the release again")
    return {"role": role, "version": version, "run_id": run.run_id}


def errored_reason(results: list[Any], gate: RegressionSettings | None = None) -> str | None:
    """Why a run says more about its generator than its template: more questions crashed (an error
    and no metric) than the gate (``RegressionSettings``; None: the defaults) allows
    (NEWSRAG_EVAL_MAX_ERROR_RATE). None when it did not."""
    from collections import Counter

    from newsrag.core.settings import defaults
    from newsrag.evaluation.regression import RegressionSettings

    max_error_rate = (gate or defaults(RegressionSettings)).max_error_rate
    crashed = [str(r.error) for r in results if r.error is not None and not r.metrics]
    if not results or len(crashed) / len(results) <= max_error_rate:
        return None
    return f"{len(crashed)} of {len(results)} questions failed with an error; most common: " \
           f"{Counter(crashed).most_common(1)[0][0][:300]}"


def compare(plan: dict[str, Any], active: dict[str, Any] | None, candidate: dict[str, Any],
            out_dir: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Gate the candidate's run against the active version's (paired bootstrap intervals over the
    shared questions) and write the comparison report."""
    from newsrag.evaluation.finish import redact_run
    from newsrag.evaluation.history import HistoryStore, history_location, reports_path
    from newsrag.evaluation.regression import RegressionSettings, apply_gate
    from newsrag.evaluation.report import write_report

    settings = settings or Settings({})
    gate = settings.get(RegressionSettings)
    with HistoryStore(history_location(settings)) as hist:
        cand = _run(hist, candidate["run_id"])
        base = _run(hist, active["run_id"]) if active else None
        if base is not None and (base.index, base.golden_sha256) != (cand.index, cand.golden_sha256):
            raise ReleaseError(f"runs {base.run_id} and {cand.run_id} were not made on the same golden set and "
                               "index snapshot")
        reasons = apply_gate(cand, base, gate)
        hist.save(redact_run(cand, settings.environ))
        report = write_report(cand, hist, Path(out_dir) if out_dir else reports_path(settings),
                              compare_run=base, feedback=_live_feedback(settings))
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


def _live_feedback(settings: Settings) -> list[Any]:
    """The app's feedback (per version and arm): the store NEWSRAG_APP_FEEDBACK_DB names, else the
    default; none when the app never wrote one, a clear error when the file is not a feedback store."""
    from newsrag.evaluation.feedback import feedback_location, read_feedback

    return list(read_feedback(feedback_location(settings)))


def _run(hist: Any, run_id: str) -> Any:
    run = hist.get(run_id)
    if run is None:
        raise NewsragError(f"evaluation run {run_id} is missing from the history")
    return run
