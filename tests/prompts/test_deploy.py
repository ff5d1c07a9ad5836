"""The deploy step is all or nothing, on both stores: a folder with one bad file registers none of
its templates (so no version is registered without being announced), the error names the file and
the reason, the active version is untouched, and a fixed redeploy registers and reports them all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from newsrag.core.errors import NewsragError
from newsrag.core.settings import Settings
from newsrag.core.templates import PromptError, PromptTemplate, load_template, templates_dir
from newsrag.prompts.registry import ActivePrompt, PromptRegistry, RegistryError
from newsrag.prompts.release import deploy

V1 = load_template(templates_dir() / "news-answer" / "1.yaml")
BACKENDS = [pytest.param("sqlite", marks=pytest.mark.unit), pytest.param("postgres", marks=pytest.mark.integration)]
A1 = V1.model_copy(update={"name": "a-tmpl", "version": "1"})
Z1 = V1.model_copy(update={"name": "z-tmpl", "version": "1"})


def write(folder: Path, *templates: PromptTemplate) -> Path:
    for t in templates:
        path = folder / t.name / f"{t.version}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(t.model_dump(mode="json"), sort_keys=False))
    return folder


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PromptRegistry]:
    """news-answer@1 registered, validated and active; deploy() with the settings built after it opens the same registry."""
    location = str(request.getfixturevalue("postgres_url") if request.param == "postgres"
                   else tmp_path / "registry.sqlite")
    monkeypatch.setenv("NEWSRAG_RELEASE_REGISTRY", location)
    reg = PromptRegistry(location)
    reg.sync()
    reg.validate("news-answer", "1")
    reg.promote("news-answer", "1", who="setup")
    yield reg
    reg.close()


def assert_untouched(reg: PromptRegistry, events_before: int) -> None:
    assert reg.names() == ["news-answer"] and reg.versions("news-answer") == ["1"]
    assert reg.active("news-answer") == ActivePrompt("news-answer", "1")
    assert len(reg.events()) == events_before  # not even a register event of the good file


BAD_FILES = {
    "malformed YAML": ("name: z-tmpl\nversion: 1\nsystem: [unclosed\n", r"z-tmpl/1\.yaml: malformed YAML"),
    "unknown field": (yaml.safe_dump({**Z1.model_dump(mode="json"), "temprature": 0.2}),
                      r"z-tmpl/1\.yaml: temprature: unknown field"),
    "another name": (yaml.safe_dump(A1.model_dump(mode="json")),
                     r"z-tmpl/1\.yaml declares a-tmpl@1; its path says z-tmpl@1"),
}


@pytest.mark.parametrize("bad", BAD_FILES.values(), ids=list(BAD_FILES))
def test_a_bad_file_registers_nothing_and_a_fixed_redeploy_registers_everything(
        registry: PromptRegistry, tmp_path: Path, bad: tuple[str, str]) -> None:
    folder = write(tmp_path / "prompts", A1)
    (folder / "z-tmpl").mkdir()
    (folder / "z-tmpl" / "1.yaml").write_text(bad[0])
    before = len(registry.events())
    with pytest.raises(PromptError, match=bad[1]) as info:
        deploy(str(folder), settings=Settings())
    assert "nothing was registered" in str(info.value)
    assert_untouched(registry, before)

    write(folder, Z1)  # the fix
    assert deploy(str(folder), settings=Settings())["registered"] == ["a-tmpl@1", "z-tmpl@1"]
    assert registry.names() == ["a-tmpl", "news-answer", "z-tmpl"]
    assert deploy(str(folder), settings=Settings())["registered"] == []


def test_a_changed_version_refuses_the_whole_deploy_naming_the_file(registry: PromptRegistry, tmp_path: Path) -> None:
    changed = V1.model_copy(update={"system": V1.system + "Changed in place.\n"})
    folder = write(tmp_path / "prompts", A1, changed)
    before = len(registry.events())
    with pytest.raises(RegistryError, match=r"news-answer/1\.yaml: news-answer@1 is already registered with "
                                            r"different content.*nothing was registered"):
        deploy(str(folder), settings=Settings())
    assert_untouched(registry, before)


@pytest.mark.parametrize("layout", ["missing", "empty"])
def test_a_folder_without_templates_is_an_error_not_an_empty_deploy(registry: PromptRegistry, tmp_path: Path,
                                                                    layout: str) -> None:
    folder = tmp_path / "prompts"
    if layout == "empty":
        folder.mkdir()
    with pytest.raises(NewsragError, match=rf"no template files \(<name>/<version>\.yaml\) in {folder}"):
        deploy(str(folder), settings=Settings())
    assert registry.names() == ["news-answer"]


def test_a_store_error_midway_rolls_back_the_versions_already_inserted(
        registry: PromptRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write(tmp_path / "prompts", A1, Z1)
    insert, calls = PromptRegistry._insert, []

    def fail_second(self: PromptRegistry, template: PromptTemplate, author: str | None) -> None:
        calls.append(template.ref)
        if len(calls) == 2:
            raise RuntimeError("the store went away")
        insert(self, template, author)

    monkeypatch.setattr(PromptRegistry, "_insert", fail_second)
    before = len(registry.events())
    with pytest.raises(RuntimeError, match="the store went away"):
        deploy(str(folder), settings=Settings())
    assert calls == ["a-tmpl@1", "z-tmpl@1"]  # a-tmpl@1 was inserted, then rolled back with the rest
    assert_untouched(registry, before)


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PromptRegistry]:
    """An empty registry (a fresh install); deploy() with the settings built after it opens the same one."""
    location = str(request.getfixturevalue("postgres_url") if request.param == "postgres"
                   else tmp_path / "fresh.sqlite")
    monkeypatch.setenv("NEWSRAG_RELEASE_REGISTRY", location)
    reg = PromptRegistry(location)
    yield reg
    reg.close()


def test_a_first_deploy_makes_the_newest_valid_version_of_each_template_active(fresh: PromptRegistry,
                                                                              tmp_path: Path) -> None:
    broken = A1.model_copy(update={"version": "3", "user": "{{ question }}\n{{ context }}\n"})  # fails lint
    a2 = A1.model_copy(update={"version": "2", "system": A1.system + "Two.\n"})
    result = deploy(str(write(tmp_path / "prompts", A1, a2, broken, Z1)), settings=Settings())
    assert result["activated"] == ["a-tmpl@2", "z-tmpl@1"]  # a-tmpl@3 fails validation: the next one down
    assert fresh.active("a-tmpl") == ActivePrompt("a-tmpl", "2")
    assert fresh.validation("a-tmpl", "3") == "failed" and fresh.validation("a-tmpl", "2") == "passed"
    [promoted] = [e for e in fresh.events("a-tmpl") if e.action == "promote"]
    assert (promoted.version, promoted.who) == ("2", "deploy") and "no version was active" in (promoted.why or "")


def test_the_shipped_deploy_activates_news_answer_1_and_a_later_deploy_never_changes_the_active_version(
        fresh: PromptRegistry, tmp_path: Path) -> None:
    assert deploy(settings=Settings()) == {"registered": ["news-answer@1"], "activated": ["news-answer@1"], "folder": "shipped templates"}
    assert fresh.active("news-answer") == ActivePrompt("news-answer", "1")
    v2 = V1.model_copy(update={"version": "2", "system": V1.system + "Newer.\n"})
    assert deploy(str(write(tmp_path / "prompts", V1, v2)), settings=Settings())["activated"] == []
    assert fresh.active("news-answer") == ActivePrompt("news-answer", "1")  # a release decides about 2
    assert fresh.validation("news-answer", "2") is None  # not even validated by the deploy


def test_a_deploy_never_overrides_a_promotion_that_lands_first(fresh: PromptRegistry, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A deploy that found nothing active, then lost the race to a manual promotion, leaves it."""
    fresh.sync()
    fresh.register(V1.model_copy(update={"version": "2", "system": V1.system + "Manual.\n"}))
    fresh.validate("news-answer", "2")
    validate = PromptRegistry.validate

    def promote_meanwhile(self: PromptRegistry, name: str, version: str, who: str | None = None) -> list[str]:
        problems = validate(self, name, version, who=who)
        fresh.promote("news-answer", "2", who="someone")  # lands between the deploy's check and its promote
        return problems

    monkeypatch.setattr(PromptRegistry, "validate", promote_meanwhile)
    assert deploy(settings=Settings())["activated"] == []
    assert fresh.active("news-answer") == ActivePrompt("news-answer", "2")
    assert [e.who for e in fresh.events("news-answer") if e.action == "promote"] == ["someone"]
