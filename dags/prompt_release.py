"""prompt_release: validate a candidate template, evaluate it against the active version on the same
golden set and index snapshot, then promote (optionally as a canary) or reject. Wiring only.

Runs on demand with Params, and whenever the deploy step updates the prompts Asset."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from newsrag_airflow.notifier import on_failure

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
        "version": Param(None, type=["null", "string"], description="Candidate version (default: newest)."),
        "canary_weight": Param(0.0, type="number", minimum=0, maximum=1,
                               description="> 0 starts an A/B test instead of a full promotion."),
    },
)
def prompt_release() -> None:
    @task
    def validate() -> dict[str, Any]:
        from prompts.release import validate
        from retrieval.generators.llm import latest_version

        p = get_current_context()["params"]
        return validate(p["name"], p.get("version") or latest_version(p["name"]))

    @task.branch
    def valid(checked: dict[str, Any]) -> str:
        return "evaluate" if checked["ok"] else "reject"

    @task
    def evaluate(checked: dict[str, Any]) -> dict[str, Any]:
        from newsrag_airflow.connections import task_env
        from prompts.release import evaluate

        with task_env():
            return evaluate(checked)

    @task
    def compare(evaluated: dict[str, Any]) -> dict[str, Any]:
        from newsrag_airflow.connections import task_env
        from prompts.release import compare

        with task_env():
            return compare(evaluated)

    @task.branch
    def decide(compared: dict[str, Any]) -> str:
        return "promote" if compared["decision"] == "promote" else "reject_after_eval"

    @task
    def promote(compared: dict[str, Any]) -> dict[str, Any]:
        from prompts.release import promote

        return promote(compared, float(get_current_context()["params"]["canary_weight"]))

    @task
    def reject(result: dict[str, Any]) -> dict[str, Any]:
        from prompts.release import reject

        return reject(result)

    @task(trigger_rule="none_failed_min_one_success")
    def notify() -> dict[str, Any]:
        from prompts.release import notify

        ti = get_current_context()["ti"]
        outcome = [r for r in ti.xcom_pull(task_ids=["promote", "reject_after_eval", "reject"]) if r]
        return notify(outcome[0])

    checked = validate()
    evaluated = evaluate(checked)
    rejected_invalid = reject(checked)
    valid(checked) >> [evaluated, rejected_invalid]
    compared = compare(evaluated)
    promoted = promote(compared)
    rejected = reject.override(task_id="reject_after_eval")(compared)
    decide(compared) >> [promoted, rejected]
    [promoted, rejected, rejected_invalid] >> notify()


prompt_release()
