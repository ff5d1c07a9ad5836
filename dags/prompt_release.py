"""prompt_release: validate a candidate template, check that the LLM generator answers (a missing
or unreachable one fails the run at once: a configuration problem, not a rejection), snapshot the
index once, evaluate candidate and active on that snapshot and the same golden questions, compare
with confidence intervals, then promote (optionally as a canary A/B arm) or reject. Wiring only.

Runs on demand with Params, and whenever the deploy step (the prompts_deploy DAG, or a CI job
posting an event through the REST API) updates the prompts Asset: such a run releases the newest
version of ``name`` that the triggering events list in their ``registered`` extra."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task

from newsrag.airflow.notifier import on_failure

PROMPTS = Asset("newsrag://prompts", group="newsrag")


@dag(
    dag_id="prompt_release",
    schedule=[PROMPTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["newsrag", "prompts"],
    default_args={"retries": 0, "on_failure_callback": on_failure()},
    params={
        "name": Param("news-answer", type="string", description="Template name."),
        "version": Param(None, type=["null", "string"],
                         description="Candidate version (default: what the deploy registered, else the newest)."),
        "canary_weight": Param(0.0, type="number", minimum=0, maximum=1,
                               description="> 0 starts an A/B test instead of a full promotion."),
    },
)
def prompt_release() -> None:
    @task
    def validate() -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release import validate_request

        context = get_current_context()
        deployed = [dict(e.extra or {}) for e in context["triggering_asset_events"][PROMPTS]]
        return validate_request(context["params"]["name"], context["params"].get("version"), deployed,
                                settings=task_settings())

    @task.branch
    def valid(checked: dict[str, Any]) -> str | None:
        if checked["candidate"] is None:
            return None  # the deploy registered nothing for this template: skip the rest
        return "check_generator" if checked["ok"] else "reject"

    @task
    def check_generator(checked: dict[str, Any]) -> dict[str, Any]:
        """No LLM, or one that does not answer, fails the run here (naming NEWSRAG_RELEASE_GENERATOR
        and the settings), before any evaluation: a configuration problem is not a rejection."""
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release_generator import check_generator

        return {**checked, "generator": check_generator(settings=task_settings())}

    @task
    def snapshot(checked: dict[str, Any]) -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release_eval import snapshot

        return snapshot(checked, settings=task_settings())

    @task
    def evaluate(plan: dict[str, Any], role: str) -> dict[str, Any] | None:
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release_eval import evaluate

        return evaluate(plan, role, settings=task_settings())

    @task
    def compare(plan: dict[str, Any], active: dict[str, Any] | None, candidate: dict[str, Any]) -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release_eval import compare

        return compare(plan, active, candidate, settings=task_settings())

    @task.branch
    def decide(compared: dict[str, Any]) -> str:
        return "promote" if compared["decision"] == "promote" else "reject_after_eval"

    @task
    def promote(compared: dict[str, Any]) -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release import promote

        return promote(compared, float(get_current_context()["params"]["canary_weight"]), settings=task_settings())

    @task
    def reject(result: dict[str, Any]) -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release import reject

        return reject(result, settings=task_settings())

    @task(trigger_rule="none_failed_min_one_success")
    def notify() -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release import notify

        ti = get_current_context()["ti"]
        outcome = [r for r in ti.xcom_pull(task_ids=["promote", "reject_after_eval", "reject"]) if r]
        return notify(outcome[0], settings=task_settings())

    checked = validate()
    generator_ok = check_generator(checked)
    plan = snapshot(generator_ok)
    rejected_invalid = reject(checked)
    valid(checked) >> [generator_ok, rejected_invalid]
    active_run = evaluate.override(task_id="evaluate_active")(plan, "active")
    candidate_run = evaluate.override(task_id="evaluate_candidate")(plan, "candidate")
    compared = compare(plan, active_run, candidate_run)
    promoted = promote(compared)
    rejected = reject.override(task_id="reject_after_eval")(compared)
    decide(compared) >> [promoted, rejected]
    [promoted, rejected, rejected_invalid] >> notify()


prompt_release()
