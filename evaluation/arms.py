"""Prompt versions and A/B arms side by side: live feedback and offline scores per template version."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from evaluation.models import EvalRun

SCORE_METRICS = ("hit@k", "faithfulness", "citation_precision", "abstention_accuracy")


def feedback_by_arm(records: Iterable[Any]) -> list[dict[str, Any]]:
    """Thumbs up/down per (template name, version, arm) from the feedback store's records."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for r in records:
        groups[(r.prompt_name or "-", r.prompt_version or "-", r.arm or "-")].append(int(r.rating))
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
