"""A prompt release as plain steps (the prompts_deploy and prompt_release DAGs wire them).

deploy: register the prompts folder's templates and say which versions are new (the DAG emits
``Asset("newsrag://prompts")`` with that list). prompt_release: pick the candidate (the Params, or
the version a deploy registered), validate it, snapshot the index once, evaluate candidate and
active on that snapshot and the same golden questions (:mod:`newsrag.prompts.release_eval`), compare with
confidence intervals, then promote (optionally as a canary A/B arm) or reject with the report.

Prompts only change what an LLM generator says, so releases evaluate with an LLM generator
(``NEWSRAG_RELEASE_GENERATOR``, default ``openai``, which also covers OpenAI-compatible servers).

Every step takes ``settings``, the root an edge built (the CLI's, or an Airflow task's
``task_settings()``); None means the documented defaults.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.settings import Settings, store_location
from newsrag.core.templates import version_key
from newsrag.prompts.registry import PromptRegistry
from newsrag.retrieval.generators import PromptRef


class ReleaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_RELEASE_", extra="ignore")

    # A SQLite path or a postgresql:// URL; default $NEWSRAG_HOME/prompt-registry.sqlite. The app
    # must read the same registry (NEWSRAG_APP_PROMPT_REGISTRY).
    registry: str | None = None
    generator: str = "openai"
    golden: str | None = None  # default: NEWSRAG_EVAL_GOLDEN_PATH
    sample: int | None = Field(None, ge=1)
    prompts_dir: Path | None = None  # the folder the deploy step registers; default: the shipped templates


def registry_location(settings: Settings) -> str:
    """``NEWSRAG_RELEASE_REGISTRY``, else ``NEWSRAG_DATABASE_URL``, else ``$NEWSRAG_HOME/prompt-registry.sqlite``."""
    return store_location(settings, settings.get(ReleaseSettings).registry, "prompt-registry.sqlite")


def open_registry(settings: Settings | None = None) -> PromptRegistry:
    return PromptRegistry(registry_location(settings or Settings({})))


def deploy(folder: str | None = None, who: str = "deploy", settings: Settings | None = None) -> dict[str, Any]:
    """Register every template of the prompts folder (default: ``NEWSRAG_RELEASE_PROMPTS_DIR``, else
    the shipped templates), all or nothing; ``registered`` lists the new ``name@version`` refs
    (empty when nothing changed). A malformed file, a file whose path and content disagree, or a
    changed version refuses the whole deploy, naming the file and the reason: nothing is
    registered, so the fixed redeploy registers (and announces) every new version.

    A template with no active version (a new registry, a new template) gets the folder's newest
    version that passes validation as its active one (``activated``), so a fresh install answers
    with a shipped version; an active version is only ever changed by a release or a promotion.
    The prompts_deploy DAG, ``newsrag prompts deploy``, the CLI's own start and the quickstart all
    deploy through here."""
    settings = settings or Settings({})
    path = Path(folder) if folder else settings.get(ReleaseSettings).prompts_dir
    with opened_registry(settings) as reg:
        done = reg.deploy(path, author=who)
    return {"registered": done.registered, "activated": done.activated, "folder": str(path or "shipped templates")}


def deployed_candidate(name: str, deployed: Iterable[Mapping[str, Any]]) -> str | None:
    """The newest version of ``name`` among the refs deploy events registered (their ``extra``)."""
    versions = [ref.split("@", 1)[1] for extra in deployed for ref in extra.get("registered") or []
                if isinstance(ref, str) and ref.startswith(f"{name}@")]
    return max(versions, key=version_key) if versions else None


def validate_request(name: str, version: str | None = None, deployed: list[Mapping[str, Any]] | None = None,
                     who: str = "prompt_release", settings: Settings | None = None) -> dict[str, Any]:
    """Pick the candidate and validate it. ``version`` (a Param) wins; an Asset-triggered run takes
    the newest version of ``name`` its deploy events registered; a manual run without a version
    takes the newest registered one. ``candidate`` is None when the deploy registered no version of
    ``name`` (nothing to release)."""
    trigger = "deploy" if version is None and deployed else "params"
    with opened_registry(settings) as reg:
        reg.sync(author="deploy")  # the shipped files, so a manual run sees them without a deploy
        active = reg.active(name).active  # RegistryError naming the known templates when unknown
        if trigger == "deploy":
            version = deployed_candidate(name, deployed or [])
            if version is None:
                return {"name": name, "candidate": None, "active": active, "ok": False, "trigger": trigger,
                        "problems": [f"the deploy registered no new version of {name}; nothing to release"]}
        version = version or max(reg.versions(name), key=version_key)
        if version == active:  # e.g. the first deploy, which made its version active already
            return {"name": name, "candidate": None, "active": active, "ok": False, "trigger": trigger,
                    "problems": [f"{name}@{version} is already the active version; nothing to release"]}
        problems = reg.validate(name, version, who=who)
    return {"name": name, "candidate": version, "active": active, "ok": not problems, "problems": problems,
            "trigger": trigger}


def promote(result: dict[str, Any], canary_weight: float = 0.0, who: str = "prompt_release",
            settings: Settings | None = None) -> dict[str, Any]:
    """Make the candidate active, or with ``canary_weight`` > 0 (and an active version) serve it as
    the A/B test's canary arm to that sticky share of keys first."""
    with opened_registry(settings) as reg:
        why = f"evaluation passed (report {result['report']})"
        run_id = result["runs"]["candidate"]
        if canary_weight > 0 and result["active"] is not None and result["active"] != result["candidate"]:
            state = reg.set_ab(result["name"], result["candidate"], canary_weight, who=who, why=why,
                               eval_run_id=run_id)
        else:
            state = reg.promote(result["name"], result["candidate"], who=who, why=why, eval_run_id=run_id)
    return {**result, "decision": "canary" if state.canary else "promote", "active_after": state.active,
            "canary": state.canary, "canary_weight": state.canary_weight}


def reject(result: dict[str, Any], who: str = "prompt_release", settings: Settings | None = None) -> dict[str, Any]:
    """Record the rejection (the active version is untouched) and say why."""
    reasons = result.get("reasons") or result.get("problems") or ["validation failed"]
    with opened_registry(settings) as reg:
        reg.record(result["name"], "reject", result["candidate"], who=who, why="; ".join(reasons),
                   eval_run_id=(result.get("runs") or {}).get("candidate"))
        active = reg.active(result["name"]).active
    return {**result, "decision": "reject", "reasons": reasons, "active_after": active}


def notify(result: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The release's outcome to every channel ``settings`` configure (``NEWSRAG_NOTIFY_*``)."""
    from newsrag.infra.notify import NotifySettings, notifiers_from_settings, notify_all

    settings = settings or Settings({})
    verdict = {"promote": "promoted", "canary": "started as a canary"}.get(result.get("decision", ""), "rejected")
    subject = f"newsrag prompt release: {result['name']}@{result['candidate']} {verdict}"
    canary = f" (canary {result['canary']} at {result['canary_weight']:.0%})" if result.get("canary") else ""
    body = "\n".join([subject, f"active now: {result.get('active_after')}{canary}",
                      *[f"- {r}" for r in result.get("reasons") or []],
                      *[f"  {line}" for line in result.get("comparison_lines") or []],
                      f"report: {result.get('report')}"])
    failures = notify_all(notifiers_from_settings(settings.get(NotifySettings)), subject, body,
                          level="warning" if verdict == "rejected" else "info", environ=settings.environ)
    return {**result, "notify_failures": failures}


@contextmanager
def opened_registry(settings: Settings | None = None) -> Iterator[PromptRegistry]:
    reg = open_registry(settings)
    try:
        yield reg
    finally:
        reg.close()


def active_prompt_ref(name: str, settings: Settings | None = None) -> PromptRef | None:
    """The registry's active version of ``name`` (the A arm) as a PromptRef, so that scheduled
    evaluation measures the template users get; None when no version was ever promoted. The edges
    hand it to the evaluation as its ``prompt_lookup`` (:func:`prompt_lookup`)."""
    with opened_registry(settings) as reg:
        reg.sync(author="deploy")  # the shipped files, as the release DAG registers them
        version = reg.active(name).active
        if version is None:
            return None
        t = reg.template(name, version)
    return PromptRef(t.name, t.version, t.system, t.user)


def prompt_lookup(settings: Settings) -> Callable[[str], PromptRef | None]:
    """:func:`active_prompt_ref` in the registry ``settings`` name: what an edge passes to the
    evaluation as its ``prompt_lookup`` (evaluation sits below prompts and cannot import it)."""
    return functools.partial(active_prompt_ref, settings=settings)
