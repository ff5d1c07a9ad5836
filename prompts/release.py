"""A prompt release as plain steps (the prompt_release DAG wires them): validate the candidate,
evaluate candidate and active on the same golden set and index snapshot, compare with confidence
intervals, then promote (optionally as a canary A/B arm) or reject with the report.

Prompts only change what an LLM generator says, so releases evaluate with an LLM generator
(``NEWSRAG_RELEASE_GENERATOR``, default ``openai``, which also covers OpenAI-compatible servers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.errors import NewsragError
from newsrag.settings import PathSettings, load
from prompts.registry import PromptRegistry
from retrieval.generators import PromptRef


class ReleaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_RELEASE_", extra="ignore")

    registry: str | None = None  # default: $NEWSRAG_HOME/prompt-registry.sqlite (shared with the app)
    generator: str = "openai"
    golden: str | None = None  # default: NEWSRAG_EVAL_GOLDEN_PATH
    sample: int | None = Field(None, ge=1)


def open_registry() -> PromptRegistry:
    settings = load(ReleaseSettings)
    return PromptRegistry(settings.registry or load(PathSettings).home / "prompt-registry.sqlite")


def validate(name: str, version: str, who: str = "prompt_release") -> dict[str, Any]:
    """Register the shipped template files (the deploy step's output), then lint and test-render."""
    with _registry() as reg:
        reg.sync(author="deploy")
        problems = reg.validate(name, version, who=who)
        active = reg.active(name).active
    return {"name": name, "candidate": version, "active": active, "ok": not problems, "problems": problems}


def evaluate(plan: dict[str, Any]) -> dict[str, Any]:
    """Evaluate candidate and active (or the candidate alone when none is active yet) on the same
    golden set and index snapshot; both runs are saved to the evaluation history."""
    from evaluation.golden import load_golden
    from evaluation.history import EvalSettings, HistoryStore
    from evaluation.runner import make_setup, retrieval_from_settings, run_eval

    settings, eval_settings = load(ReleaseSettings), load(EvalSettings)
    golden = load_golden(settings.golden or eval_settings.golden_path)
    runs: dict[str, Any] = {}
    with _clients() as (store, embedder), _registry() as reg, HistoryStore(eval_settings.history_location()) as hist:
        for role, version in (("active", plan["active"]), ("candidate", plan["candidate"])):
            if version is None:
                continue
            t = reg.template(plan["name"], version)
            setup = make_setup(store, embedder, retrieval_from_settings(), generator=settings.generator,
                               prompt=PromptRef(t.name, t.version, t.system, t.user))
            run = run_eval(golden, store=store, embedder=embedder, setup=setup, sample=settings.sample)
            hist.save(run)
            runs[role] = run.run_id
    return {**plan, "runs": runs}


def compare(evaluated: dict[str, Any], out_dir: str | None = None) -> dict[str, Any]:
    """Gate the candidate against the active version's run; write the comparison report."""
    from evaluation.history import EvalSettings, HistoryStore
    from evaluation.regression import RegressionSettings, apply_gate
    from evaluation.report import write_report

    eval_settings = load(EvalSettings)
    with HistoryStore(eval_settings.history_location()) as hist:
        candidate = _run(hist, evaluated["runs"]["candidate"])
        active = _run(hist, evaluated["runs"]["active"]) if "active" in evaluated["runs"] else None
        reasons = apply_gate(candidate, active, load(RegressionSettings))
        hist.save(candidate)
        report = write_report(candidate, hist, Path(out_dir) if out_dir else eval_settings.reports_path(),
                              compare_run=active, feedback=_live_feedback())
    return {**evaluated, "decision": "reject" if reasons else "promote", "reasons": reasons, "report": str(report),
            "headline": {k: a.mean for k, a in candidate.aggregates.items()}}


def promote(result: dict[str, Any], canary_weight: float = 0.0, who: str = "prompt_release") -> dict[str, Any]:
    with _registry() as reg:
        why = f"evaluation passed (report {result['report']})"
        run_id = result["runs"]["candidate"]
        if canary_weight > 0 and result["active"] is not None:
            state = reg.set_ab(result["name"], result["candidate"], canary_weight, who=who, why=why, eval_run_id=run_id)
        else:
            state = reg.promote(result["name"], result["candidate"], who=who, why=why, eval_run_id=run_id)
    return {**result, "active_after": state.active, "canary": state.canary, "canary_weight": state.canary_weight}


def reject(result: dict[str, Any], who: str = "prompt_release") -> dict[str, Any]:
    """Record the rejection (the active version is untouched) and say why."""
    reasons = result.get("reasons") or result.get("problems") or ["validation failed"]
    with _registry() as reg:
        reg.record(result["name"], "reject", result["candidate"], who=who, why="; ".join(reasons),
                      eval_run_id=(result.get("runs") or {}).get("candidate"))
        active = reg.active(result["name"]).active
    return {**result, "decision": "reject", "reasons": reasons, "active_after": active}


def notify(result: dict[str, Any]) -> dict[str, Any]:
    from evaluation.notify import notifiers_from_env, notify_all

    verdict = "promoted" if result.get("decision") == "promote" else "rejected"
    subject = f"newsrag prompt release: {result['name']}@{result['candidate']} {verdict}"
    body = "\n".join([subject, f"active now: {result.get('active_after')}",
                      *[f"- {r}" for r in result.get("reasons") or []], f"report: {result.get('report')}"])
    failures = notify_all(notifiers_from_env(), subject, body, level="info" if verdict == "promoted" else "warning")
    return {**result, "notify_failures": failures}


class _registry:  # noqa: N801 - a tiny context manager
    def __enter__(self) -> PromptRegistry:
        self.reg = open_registry()
        return self.reg

    def __exit__(self, *exc: object) -> None:
        self.reg.close()


class _clients:  # noqa: N801
    def __enter__(self) -> tuple[Any, Any]:
        from embeddings import create_embedder
        from retrieval.store import WeaviateStore

        self.store = WeaviateStore()
        return self.store, create_embedder()

    def __exit__(self, *exc: object) -> None:
        self.store.close()


def _live_feedback() -> list[Any]:
    """The app's feedback (per version and arm) when this worker can see it; none otherwise."""
    from evaluation.feedback import FeedbackStore

    path = load(PathSettings).home / "feedback.sqlite"
    if not path.exists():
        return []
    store = FeedbackStore(path)
    try:
        return store.feedback()
    finally:
        store.close()


def _run(hist: Any, run_id: str) -> Any:
    run = hist.get(run_id)
    if run is None:
        raise NewsragError(f"evaluation run {run_id} is missing from the history")
    return run


def active_prompt_ref(name: str) -> PromptRef | None:
    """The registry's active version of ``name`` (the A arm) as a PromptRef, so that scheduled
    evaluation measures the template users get; None when no version was ever promoted."""
    with _registry() as reg:
        reg.sync(author="deploy")  # the shipped files, as the release DAG registers them
        version = reg.active(name).active
        if version is None:
            return None
        t = reg.template(name, version)
    return PromptRef(t.name, t.version, t.system, t.user)
