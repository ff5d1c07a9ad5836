"""The deploy step is all or nothing, on both stores: a folder with one bad file registers none of
its templates (so no version is registered without being announced), the error names the file and
the reason, the active version is untouched, and a fixed redeploy registers and reports them all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from newsrag.errors import NewsragError
from prompts.registry import ActivePrompt, PromptRegistry, RegistryError
from prompts.release import deploy
from prompts.template import PromptError, PromptTemplate, load_template, templates_dir

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
    """news-answer@1 registered, validated and active; deploy() opens the same registry."""
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
        deploy(str(folder))
    assert "nothing was registered" in str(info.value)
    assert_untouched(registry, before)

    write(folder, Z1)  # the fix
    assert deploy(str(folder))["registered"] == ["a-tmpl@1", "z-tmpl@1"]
    assert registry.names() == ["a-tmpl", "news-answer", "z-tmpl"]
    assert deploy(str(folder))["registered"] == []


def test_a_changed_version_refuses_the_whole_deploy_naming_the_file(registry: PromptRegistry, tmp_path: Path) -> None:
    changed = V1.model_copy(update={"system": V1.system + "Changed in place.\n"})
    folder = write(tmp_path / "prompts", A1, changed)
    before = len(registry.events())
    with pytest.raises(RegistryError, match=r"news-answer/1\.yaml: news-answer@1 is already registered with "
                                            r"different content.*nothing was registered"):
        deploy(str(folder))
    assert_untouched(registry, before)


@pytest.mark.parametrize("layout", ["missing", "empty"])
def test_a_folder_without_templates_is_an_error_not_an_empty_deploy(registry: PromptRegistry, tmp_path: Path,
                                                                    layout: str) -> None:
    folder = tmp_path / "prompts"
    if layout == "empty":
        folder.mkdir()
    with pytest.raises(NewsragError, match=rf"no template files \(<name>/<version>\.yaml\) in {folder}"):
        deploy(str(folder))
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
        deploy(str(folder))
    assert calls == ["a-tmpl@1", "z-tmpl@1"]  # a-tmpl@1 was inserted, then rolled back with the rest
    assert_untouched(registry, before)
