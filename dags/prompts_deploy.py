"""prompts_deploy: the deploy step of prompt templates. Registers the prompts folder in the registry
and updates ``Asset("newsrag://prompts")`` with the new versions (extra ``registered``), which
schedules prompt_release for them. Nothing new registered: the task is skipped and no event is
emitted. A bad file fails the task with nothing registered and no event (the deploy is all or
nothing), so the fixed redeploy announces every new version. Wiring only.

A CI deploy runs it after shipping the templates (``POST /api/v2/dags/prompts_deploy/dagRuns``, or
``POST /api/v2/assets/{asset_id}/materialize``), or posts the event itself
(``POST /api/v2/assets/events`` with ``{"asset_id": ..., "extra": {"registered": ["news-answer@3"]}}``)."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from newsrag.airflow.notifier import on_failure

PROMPTS = Asset("newsrag://prompts", group="newsrag")


@dag(
    dag_id="prompts_deploy",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["newsrag", "prompts"],
    default_args={"retries": 0, "on_failure_callback": on_failure()},
    params={
        "folder": Param(None, type=["null", "string"],
                        description="Folder of <name>/<version>.yaml files (default: NEWSRAG_RELEASE_PROMPTS_DIR, "
                                    "else the templates shipped with the code)."),
    },
)
def prompts_deploy() -> None:
    @task(outlets=[PROMPTS])
    def register() -> dict[str, Any]:
        from newsrag.airflow.hooks import task_settings
        from newsrag.prompts.release import deploy

        context = get_current_context()
        result = deploy(context["params"].get("folder"), settings=task_settings())
        if not result["registered"]:
            raise AirflowSkipException(f"no new template version in {result['folder']}; nothing to release")
        context["outlet_events"][PROMPTS].extra = result
        return result

    register()


prompts_deploy()
