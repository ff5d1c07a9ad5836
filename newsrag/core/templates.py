"""A prompt template: strict YAML, sandboxed Jinja2, retrieved text passed only as delimited data.

Templates never see raw article text. The renderer builds ``context`` itself: every block sits
inside ``<article n="…">…</article>`` with any delimiter look-alikes in the text neutralised, and
the template must place ``{{ context }}`` between ``<context>`` and ``</context>``. An instruction
injected into an article therefore stays inside the data delimiters.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from newsrag.core.errors import NewsragError

NAME = r"^[a-z0-9][a-z0-9-]{0,63}$"
VERSION = r"^(\d+|\d+\.\d+\.\d+)$"
ALLOWED_VARIABLES = {"question", "context", "today", "n_blocks"}
_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_DELIMITER = re.compile(r"</?\s*(context|article)\b", re.IGNORECASE)


class PromptError(NewsragError):
    """A template is malformed, fails validation, or cannot be rendered; the message says why."""


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a version (integer or semver): "10" after "9", "1.10.0" after "1.9.0"."""
    return tuple(int(x) for x in version.split("."))


def templates_dir() -> Path:
    """The shipped templates: package data of ``newsrag.prompts`` (a path, not an import: core is below prompts)."""
    return Path(__file__).resolve().parents[1] / "prompts" / "templates"


class PromptTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME)
    version: str = Field(pattern=VERSION)
    description: str = ""
    model_parameters: dict[str, Any] = Field(default_factory=dict)
    system: str = Field(min_length=1)
    user: str = Field(min_length=1)
    variables: tuple[str, ...]
    changelog: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v

    @property
    def content_hash(self) -> str:
        body = json.dumps(self.model_dump(mode="json", exclude={"changelog", "description"}), sort_keys=True)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def used_variables(self) -> set[str]:
        found: set[str] = set()
        for part in ("system", "user"):
            try:
                found |= meta.find_undeclared_variables(_ENV.parse(getattr(self, part)))
            except TemplateSyntaxError as exc:
                raise PromptError(f"{self.ref}: {part} template line {exc.lineno}: {exc.message}") from None
        return found

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def render(self, **variables: Any) -> RenderedPrompt:
        """Render with exactly the declared variables; names every missing or unknown one."""
        missing = sorted(set(self.variables) - set(variables))
        unknown = sorted(set(variables) - set(self.variables))
        if missing or unknown:
            parts = ([f"missing variable(s) {', '.join(missing)}"] if missing else []) + (
                [f"unknown variable(s) {', '.join(unknown)}"] if unknown else [])
            raise PromptError(f"cannot render {self.ref}: {'; '.join(parts)}")
        try:
            return RenderedPrompt(self.name, self.version, _ENV.from_string(self.system).render(**variables),
                                  _ENV.from_string(self.user).render(**variables), dict(self.model_parameters))
        except Exception as exc:  # noqa: BLE001 - jinja errors of every kind become one named error
            raise PromptError(f"cannot render {self.ref}: {exc}") from None


@dataclass(frozen=True)
class RenderedPrompt:
    name: str
    version: str
    system: str
    user: str
    parameters: dict[str, Any]


def delimit_context(blocks: Sequence[Any]) -> str:
    """Context blocks as delimited data; delimiter look-alikes inside article text are defused."""
    out = []
    for b in blocks:
        title = _DELIMITER.sub(_defuse, str(b.title))
        text = _DELIMITER.sub(_defuse, str(b.text))
        date = b.published_at.date().isoformat() if getattr(b, "published_at", None) else "unknown"
        out.append(f'<article n="{b.n}" source="{b.source_id}" published="{date}">\n'
                   f"title: {title}\n{text}\n</article>")
    return "\n".join(out)


def _defuse(m: re.Match[str]) -> str:
    return m.group(0).replace("<", "‹")


def load_template(path: str | Path) -> PromptTemplate:
    """Parse and validate one template file; errors name the file and what is wrong."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptError(f"template file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise PromptError(f"{path}: malformed YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PromptError(f"{path}: expected a mapping of template fields")
    try:
        template = PromptTemplate(**raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'template'}: "
                            f"{'unknown field' if e['type'] == 'extra_forbidden' else e['msg']}" for e in exc.errors())
        raise PromptError(f"{path}: {details}") from None
    return template


def load_folder(folder: Path) -> dict[Path, PromptTemplate]:
    """Every ``<name>/<version>.yaml`` under ``folder``, each parsed and checked before any is used;
    one error names every bad file and why. A folder without template files is an error too."""
    paths = sorted(folder.glob("*/*.yaml")) if folder.is_dir() else []
    if not paths:
        raise PromptError(f"no template files (<name>/<version>.yaml) in {folder}")
    templates, problems = {}, []
    for path in paths:
        try:
            templates[path] = _load_in_place(path)
        except PromptError as exc:
            problems.append(str(exc))
    if problems:
        raise PromptError(f"{len(problems)} of {len(paths)} template file(s) refused: {'; '.join(problems)}")
    return templates


def _load_in_place(path: Path) -> PromptTemplate:
    template = load_template(path)
    if (template.name, template.version) != (path.parent.name, path.stem):
        raise PromptError(f"{path} declares {template.ref}; its path says {path.parent.name}@{path.stem}")
    return template


def lint(template: PromptTemplate) -> list[str]:
    """Problems that make a template unsafe or unusable; empty when it passes."""
    problems = []
    used = template.used_variables()
    if undeclared := sorted(used - set(template.variables)):
        problems.append(f"uses undeclared variable(s) {', '.join(undeclared)}")
    if unknown := sorted(set(template.variables) - ALLOWED_VARIABLES):
        problems.append(f"declares variable(s) the app does not provide: {', '.join(unknown)}")
    for part in ("system", "user"):
        source = getattr(template, part)
        for m in re.finditer(r"\{\{-?\s*context\b", source):
            before = source[:m.start()]
            if before.rfind("<context>") <= before.rfind("</context>"):
                problems.append(f"{part}: {{{{ context }}}} must sit between <context> and </context>")
    if "context" not in used:
        problems.append("never uses {{ context }}: answers would not be grounded")
    return problems
