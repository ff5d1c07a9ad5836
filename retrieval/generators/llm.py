"""What the LLM generators share: prompt templates, citation markers, quotes, abstention, streaming.

* **Prompt** (:func:`resolve_template`): ``prompts/templates/<name>/<version>.yaml``, by default
  ``news-answer`` at its highest version; a :class:`PromptRef` picks name/version, or is used inline
  if it has ``system`` and ``user``. Templates must pass ``lint``; article text reaches the model
  only through ``delimit_context``. The generation records the template (:class:`LLMGeneration`).
* **Markers** (:func:`clean_markers`): ``[n]``, ``[n][m]``, ``[n, m]`` are checked against the block
  numbers; valid ones become ``[n][m]``; invalid numbers are removed (an emptied marker with the
  spaces before it), logged, and listed in ``LLMGeneration.invalid_citations``.
* **Quotes** (:func:`parse_citations`): the cited block's sentence sharing most content words with
  the claim (answer text since the previous marker of its sentence, or the whole sentence if that
  has under two content words), with its chunk as ``chunk_id``: verbatim source text. Below
  :data:`MIN_QUOTE_OVERLAP` it is the answer's sentence (the block does not visibly support it).
* **Abstention**: the abstain text (case, outer quotes/asterisks, final period, markers ignored) ->
  ``abstained=True``, no citations, text kept. No valid marker is *not* an abstention
  (``abstained=False``, zero citations, a warning). No blocks, or nothing left once invalid markers
  are removed -> :data:`ABSTAIN_TEXT`, abstained (no request without blocks).
* **Streaming**: deltas are the text with markers cleaned as they complete (an unfinished marker and
  trailing whitespace held back), so they concatenate to the final text. Retries happen only until
  the first non-blank text arrives.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections.abc import Callable, Collection, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from newsrag.core.templates import (
    ALLOWED_VARIABLES,
    NAME,
    VERSION,
    PromptError,
    PromptTemplate,
    delimit_context,
    lint,
    load_template,
    templates_dir,
)
from newsrag.providers.errors import malformed
from newsrag.providers.retry import call_with_retries
from newsrag.retrieval.context import ContextBlock
from newsrag.retrieval.generators.base import (
    Citation,
    Generation,
    GenerationDelta,
    PromptRef,
    stream_whole,
)
from newsrag.retrieval.generators.extractive import ABSTAIN_TEXT, content_words, split_sentences

log = logging.getLogger(__name__)
T = TypeVar("T")
Messages = list[dict[str, str]]

DEFAULT_PROMPT = "news-answer"
MIN_QUOTE_OVERLAP = 0.34
_MARKER = re.compile(r"([ \t]*)\[(\d{1,3}(?:\s?,\s?\d{1,3}){0,9})\]")  # at most 59 chars from "["
_PENDING = re.compile(r"\[[\d,\s]{0,58}$")  # could still become a marker
_ANY_MARKER = re.compile(r"\[[\d,\s]*\]")
_ONE = re.compile(r"\[(\d{1,3})\]")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)]*(?:\s*\[\d{1,3}\])*\s+(?=[\"'“‘(]?[A-Z0-9$£€])")
_ABSTAIN = " ".join(ABSTAIN_TEXT.casefold().rstrip(".").split())
_warned: set[tuple[str, tuple[str, ...]]] = set()


@dataclass(frozen=True)
class LLMGeneration(Generation):
    """A Generation plus its template and the ``[n]`` numbers cited that match no block (removed)."""

    prompt_name: str = ""
    prompt_version: str = ""
    invalid_citations: tuple[int, ...] = ()


def latest_version(name: str, directory: Path | None = None) -> str:
    folder = (directory or templates_dir()) / name
    versions = [p.stem for p in folder.glob("*.yaml") if re.fullmatch(VERSION, p.stem)]
    if not versions:
        raise PromptError(f"no version of prompt template {name!r} in {folder}")
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


@functools.lru_cache(maxsize=64)
def _load(path: str, mtime_ns: int) -> PromptTemplate:
    template = load_template(path)
    if problems := lint(template):
        raise PromptError(f"{path}: {'; '.join(problems)}")
    return template


def resolve_template(prompt: PromptRef | None = None, directory: Path | None = None) -> PromptTemplate:
    """The template to render: ``prompt``'s inline text, its file, or the default's latest version."""
    name = prompt.name if prompt is not None else DEFAULT_PROMPT
    version = prompt.version if prompt is not None and prompt.version != "latest" else ""
    if not re.fullmatch(NAME, name) or not re.fullmatch(VERSION, version or "0"):
        raise PromptError(f"invalid prompt reference {name!r}@{version!r}")
    if prompt is not None and prompt.system and prompt.user:
        return _inline(name, version or "0", prompt.system, prompt.user)  # "0": unversioned
    version = version or latest_version(name, directory)
    path = (directory or templates_dir()) / name / f"{version}.yaml"
    if not path.is_file():
        raise PromptError(f"prompt template {name}@{version} does not exist ({path})")
    template = _load(str(path), path.stat().st_mtime_ns)
    if (template.name, template.version) != (name, version):
        raise PromptError(f"{path} declares {template.ref}, expected {name}@{version}")
    return template


def _inline(name: str, version: str, system: str, user: str) -> PromptTemplate:
    probe = PromptTemplate(name=name, version=version, system=system, user=user, variables=())
    template = probe.model_copy(update={"variables": tuple(sorted(probe.used_variables() & ALLOWED_VARIABLES))})
    if problems := lint(template):
        raise PromptError(f"inline prompt {template.ref}: {'; '.join(problems)}")
    return template


def render_messages(template: PromptTemplate, question: str, blocks: Sequence[ContextBlock],
                    today: date | str) -> Messages:
    """``[system, user]`` chat messages; the blocks only as ``delimit_context`` data."""
    values: dict[str, Any] = {"question": question, "context": delimit_context(blocks), "n_blocks": len(blocks),
                              "today": today if isinstance(today, str) else today.isoformat()}
    rendered = template.render(**{k: v for k, v in values.items() if k in template.variables})
    return [{"role": "system", "content": rendered.system.strip()},
            {"role": "user", "content": rendered.user.strip()}]


def map_parameters(params: Mapping[str, Any], names: Mapping[str, str], provider: str) -> dict[str, Any]:
    """Template ``model_parameters`` under the provider's names; unknown ones dropped (warned once)."""
    if (unknown := tuple(sorted(set(params) - set(names)))) and (provider, unknown) not in _warned:
        _warned.add((provider, unknown))
        log.warning("%s: ignoring the prompt's model parameter(s) %s", provider, ", ".join(unknown))
    return {names[k]: v for k, v in params.items() if k in names}


def clean_markers(text: str, valid: Collection[int]) -> tuple[str, list[int]]:
    """``text`` with markers normalised to ``[n][m]`` and unknown numbers removed; the removed
    numbers, in order of appearance."""
    invalid: list[int] = []

    def fix(m: re.Match[str]) -> str:
        numbers = [int(x) for x in re.split(r"\s?,\s?", m.group(2))]
        invalid.extend(n for n in numbers if n not in valid)
        keep = [n for n in dict.fromkeys(numbers) if n in valid]
        return m.group(1) + "".join(f"[{n}]" for n in keep) if keep else ""

    return _MARKER.sub(fix, text), list(dict.fromkeys(invalid))


def _plain(text: str) -> str:
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(_ONE.sub(" ", text).split()))


def _answer_sentences(text: str) -> list[str]:
    marked = "\n".join(_SENTENCE_END.sub(lambda m: m.group(0) + "\n", line) for line in text.splitlines())
    return [s.strip() for s in marked.splitlines() if s.strip()]


def _claims(sentence: str) -> Iterator[tuple[int, str, str]]:
    whole, claim, start = _plain(sentence), _plain(sentence), 0
    for m in _ONE.finditer(sentence):
        between = sentence[start:m.start()]
        if between.strip():  # adjacent markers share one claim
            segment = _plain(between)
            claim = segment if len(content_words(segment)) >= 2 else whole
        yield int(m.group(1)), claim, whole
        start = m.end()


def _citation(block: ContextBlock, claim: str, sentence: str) -> Citation:
    pieces = [(p.chunk_id, p.text) for p in block.parts] or [
        (block.chunk_ids[0] if block.chunk_ids else "", block.text)]
    candidates = [(chunk_id, s) for chunk_id, text in pieces for s in split_sentences(text)]
    chunk_id, quote = pieces[0][0], sentence
    if candidates:
        words = content_words(claim)
        scores = [len(words & content_words(s)) / len(words) if words else 0.0 for _, s in candidates]
        best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
        chunk_id = candidates[best][0]
        if scores[best] >= MIN_QUOTE_OVERLAP or not sentence:
            quote = candidates[best][1]
    return Citation(n=block.n, chunk_id=chunk_id, doc_id=block.doc_id, url=block.url, title=block.title,
                    quote=quote)


def parse_citations(text: str, blocks: Sequence[ContextBlock]) -> tuple[str, list[Citation], list[int]]:
    """(clean text, citations in order of appearance, invalid numbers) - see the module docstring."""
    by_n = {b.n: b for b in blocks}
    clean, invalid = clean_markers(text, by_n)
    clean = clean.strip()
    citations: list[Citation] = []
    for sentence in _answer_sentences(clean):
        for n, claim, whole in _claims(sentence):
            citation = _citation(by_n[n], claim, whole)
            if not any((c.n, c.chunk_id, c.quote) == (n, citation.chunk_id, citation.quote) for c in citations):
                citations.append(citation)
    return clean, citations, invalid


def is_abstention(text: str) -> bool:
    bare = _ANY_MARKER.sub(" ", text).casefold().strip(" \t\r\n*_\"'“”‘’").rstrip(".!").strip()
    return " ".join(bare.split()) == _ABSTAIN


def build_generation(raw: str, blocks: Sequence[ContextBlock], *, template: PromptTemplate,
                     model: str, generator: str) -> LLMGeneration:
    text, citations, invalid = parse_citations(raw, blocks)
    if invalid:
        log.warning("%s (%s) cited %s but only blocks 1-%d exist; removed from the answer",
                    generator, model, ", ".join(f"[{n}]" for n in invalid), len(blocks))
    abstained = is_abstention(text) or not text
    if abstained:
        text, citations = text or ABSTAIN_TEXT, []
    elif not citations:
        log.warning("%s (%s) answered without a valid citation", generator, model)
    return LLMGeneration(text=text, citations=citations, abstained=abstained, model=model, generator=generator,
                         prompt_name=template.name, prompt_version=template.version,
                         invalid_citations=tuple(invalid))


def visible_text(raw: str, valid: Collection[int]) -> str:
    """What a partly streamed answer may show: its clean text without a possibly unfinished marker
    or trailing whitespace - always a prefix of the final text."""
    held = _PENDING.search(raw)
    return clean_markers(raw[:held.start() if held else len(raw)].rstrip(), valid)[0].strip()


class ChatGenerator:
    """generate/stream over a chat model; subclasses give ``_complete`` and ``_pieces`` (ProviderErrors)."""

    name = ""
    provider = ""
    parameters: Mapping[str, str] = {}

    def __init__(self, model: str, *, max_retries: int, max_retry_wait: float,
                 sleep: Callable[[float], None], today: Callable[[], date] | None = None,
                 templates: Path | None = None) -> None:
        self.model, self.max_retries, self.max_retry_wait = model, max_retries, max_retry_wait
        self._sleep, self._templates = sleep, templates
        self._today = today or (lambda: datetime.now(UTC).date())

    @property
    def prompt(self) -> PromptRef:  # the template used when generate() gets no PromptRef
        template = resolve_template(None, self._templates)
        return PromptRef(template.name, template.version)

    def generate(self, question: str, blocks: list[ContextBlock], *,
                 prompt: PromptRef | None = None) -> Generation:
        template = resolve_template(prompt, self._templates)
        if not blocks:
            return build_generation("", [], template=template, model=self.model, generator=self.name)
        messages, params = self._request(template, question, blocks)
        raw = self._retrying(lambda: self._complete(messages, params))
        return build_generation(raw, blocks, template=template, model=self.model, generator=self.name)

    def stream(self, question: str, blocks: list[ContextBlock], *,
               prompt: PromptRef | None = None) -> Iterator[GenerationDelta]:
        template = resolve_template(prompt, self._templates)
        if not blocks:
            yield from stream_whole(self.generate(question, blocks, prompt=prompt))
            return
        messages, params = self._request(template, question, blocks)
        first, rest = self._retrying(lambda: self._first_piece(self._pieces(messages, params)))
        raw, shown, valid = "", "", {b.n for b in blocks}
        try:
            for piece in itertools.chain([first], rest):
                raw += piece
                if len(text := visible_text(raw, valid)) > len(shown):
                    yield GenerationDelta(text=text[len(shown):])
                    shown = text
        finally:
            rest.close()
        final = build_generation(raw, blocks, template=template, model=self.model, generator=self.name)
        if final.text != shown and final.text.startswith(shown):  # a held marker; or the abstain text
            yield GenerationDelta(text=final.text[len(shown):])
        yield GenerationDelta(final=final)

    def _request(self, template: PromptTemplate, question: str,
                 blocks: Sequence[ContextBlock]) -> tuple[Messages, dict[str, Any]]:
        return (render_messages(template, question, blocks, self._today()),
                map_parameters(template.model_parameters, self.parameters, self.provider))

    def _first_piece(self, pieces: Generator[str, None, None]) -> tuple[str, Generator[str, None, None]]:
        seen = ""
        for piece in pieces:
            seen += piece
            if seen.strip():
                return seen, pieces
        raise malformed(self.provider, self.model, "the stream ended without any text")

    def _retrying(self, fn: Callable[[], T]) -> T:  # a Retry-After over max_retry_wait ends retries
        return call_with_retries(fn, max_retries=self.max_retries, sleep=self._sleep,
                                 max_wait=self.max_retry_wait, give_up_over_max_wait=True)

    def _complete(self, messages: Messages, params: dict[str, Any]) -> str:
        raise NotImplementedError

    def _pieces(self, messages: Messages, params: dict[str, Any]) -> Generator[str, None, None]:
        raise NotImplementedError
