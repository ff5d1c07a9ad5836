"""Prompt versions and A/B arms side by side: live feedback and offline scores per template version.

Live feedback (the app's feedback store) is per (template name, version, arm); offline scores
(evaluation runs) are per (template name, version): a run measures a template, whichever arm
serves it. :func:`breakdown_by_arm` joins the two.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from newsrag.evaluation.models import EvalRun

SCORE_METRICS = ("hit@k", "faithfulness", "citation_precision", "abstention_accuracy")
NONE = "-"  # no template name, version or arm recorded


def feedback_by_arm(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Thumbs up/down per (template name, version, arm) from the feedback store's records."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for r in records:
        groups[(r.prompt_name or NONE, r.prompt_version or NONE, r.arm or NONE)].append(int(r.rating))
    rows = []
    for (name, version, arm), ratings in sorted(groups.items()):
        up = sum(1 for x in ratings if x > 0)
        rows.append({"prompt": name, "version": version, "arm": arm, "up": up, "down": len(ratings) - up,
                     "n": len(ratings), "share_up": up / len(ratings)})
    return rows


def scores_by_version(runs: Sequence[EvalRun], metrics: Sequence[str] = SCORE_METRICS) -> list[dict[str, Any]]:
    """The latest offline scores of every prompt version that has an evaluation run."""
    latest: dict[tuple[str, str], EvalRun] = {}
    for run in sorted(runs, key=lambda r: r.started_at):
        latest[(run.prompt_name, run.prompt_version)] = run
    return [{"prompt": name, "version": version, "run_id": run.run_id, "generator": run.generator,
             "scores": {m: (run.aggregates[m].mean if m in run.aggregates else None) for m in metrics}}
            for (name, version), run in sorted(latest.items())]


def breakdown_by_arm(records: Iterable[Any], runs: Sequence[EvalRun],
                     metrics: Sequence[str] = SCORE_METRICS) -> list[dict[str, Any]]:
    """One row per (template name, version, arm) with live feedback, plus one (arm "-") per
    version that only has runs: thumbs up and down, their count and share up (None without
    feedback), and the latest run of that version with its scores (None without a run)."""
    feedback = {(r["prompt"], r["version"], r["arm"]): r for r in feedback_by_arm(records)}
    scores = {(s["prompt"], s["version"]): s for s in scores_by_version(runs, metrics)}
    with_feedback = {key[:2] for key in feedback}
    keys = sorted(set(feedback) | {(*version, NONE) for version in scores if version not in with_feedback})
    rows = []
    for key in keys:
        fb, sc = feedback.get(key), scores.get(key[:2])
        rows.append({"prompt": key[0], "version": key[1], "arm": key[2],
                     "up": fb["up"] if fb else 0, "down": fb["down"] if fb else 0, "n": fb["n"] if fb else 0,
                     "share_up": fb["share_up"] if fb else None, "run_id": sc["run_id"] if sc else None,
                     "scores": sc["scores"] if sc else {m: None for m in metrics}})
    return rows
