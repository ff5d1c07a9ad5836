"""Answer quality, offline and deterministic: no model, same input -> same number.

Each function returns a :class:`MetricResult`; ``value`` is ``None`` when the metric does not
apply (an abstention, no reference, an empty answer) - reported apart, never averaged as 0.
``method`` is ``offline:<name>`` here and ``judge:<model>`` for :mod:`newsrag.evaluation.judge`.

Shared text rules:

* **sentences**: split after ``.``/``!``/``?`` followed by space and a capital, digit, quote or
  currency sign (not after a few abbreviations such as "Dr." or an initial), and at line breaks.
  ``[n]`` markers right after a sentence's end belong to that sentence.
* **content words**: lowercase tokens ``[a-z0-9]+`` (inner ``.,'-`` kept: "7-4", "618.4"),
  minus :data:`STOPWORDS`, stemmed by stripping one suffix - ``ing``, ``es``, ``ed`` or ``s`` -
  and then a final ``e`` (so vote/votes/voted/voting agree), only while 3+ letters remain.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from newsrag.evaluation.metrics import Summary, normalize_span, strip_markers, summarize


def _wordlist(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS = _wordlist("""
a an the and or but if of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very
can will just should now is are was were be been being have has had having do does did doing
would could might must shall may i me my we our you your he him his she her it its they them their
what which who whom whose this that these those am as until while also per said says say
many much
""")
ABBREVIATIONS = _wordlist("mr mrs ms dr prof st jr sr inc ltd co corp vs etc no gen gov sen rep")
SUPPORT_THRESHOLD = 0.6

_TOKEN = re.compile(r"[a-z0-9]+(?:[.,'\u2019-][a-z0-9]+)*")
_MARKERS_AFTER_END = re.compile(r"([.!?]+[\"'\u201d\u2019)]*)((?:\s*\[\d+\])+)")
_BOUNDARY = re.compile(r"[.!?]+[\"'\u201d\u2019)]*\s+(?=[\"'\u201c\u2018(]?[A-Z0-9$\u00a3\u20ac])")
_MARKER_N = re.compile(r"\[(\d+)\]")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


class MetricResult(BaseModel):
    name: str
    value: float | None
    method: str  # "offline:<name>" or "judge:<model>"
    details: dict[str, Any] = Field(default_factory=dict)


def _offline(name: str, value: float | None, **details: Any) -> MetricResult:
    return MetricResult(name=name, value=value, method=f"offline:{name}", details=details)


# -- text helpers ------------------------------------------------------------------------------


def stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and word[:-len(suffix)].isalpha():
            word = word[:-len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") and word.isalpha() else word


def content_words(text: str) -> set[str]:
    return {stem(t) for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS}


def split_sentences(text: str) -> list[tuple[str, list[int]]]:
    """``(sentence without markers, cited marker numbers)`` per sentence of an answer."""
    text = _MARKERS_AFTER_END.sub(lambda m: m.group(2) + m.group(1), text)
    out: list[tuple[str, list[int]]] = []
    for line in text.splitlines():
        start = 0
        for m in _BOUNDARY.finditer(line):
            before = line[start:m.start()].split()
            word = before[-1].strip("\"'(\u201c\u2018").lower() if before else ""
            if line[m.start()] == "." and (word in ABBREVIATIONS or re.fullmatch(r"[a-z]", word)):
                continue
            out.append(_sentence(line[start:m.end()]))
            start = m.end()
        out.append(_sentence(line[start:]))
    return [(s, ns) for s, ns in out if s]


def _sentence(raw: str) -> tuple[str, list[int]]:
    cited = list(dict.fromkeys(int(n) for n in _MARKER_N.findall(raw)))
    return strip_markers(raw), cited


# -- metrics -----------------------------------------------------------------------------------


def contexts_by_marker(citations: Iterable[Any], texts_by_chunk_id: Mapping[str, str]) -> dict[int, str]:
    """``{n: text}`` for :func:`faithfulness_offline`: the texts of the chunks each ``[n]`` cites
    (citations are ``AnswerCitation`` objects or dicts with ``n`` and ``chunk_id``)."""
    out: dict[int, list[str]] = {}
    for c in citations:
        n, chunk_id = _get(c, "n"), str(_get(c, "chunk_id") or "")
        text = texts_by_chunk_id.get(chunk_id)
        if n is not None and text and text not in out.setdefault(int(n), []):
            out[int(n)].append(text)
    return {n: "\n".join(texts) for n, texts in out.items()}


def faithfulness_offline(answer_text: str, cited_contexts: Mapping[int, str], *,
                         abstained: bool = False) -> MetricResult:
    """Share of the answer's sentences supported by what they cite.

    A sentence S (markers stripped; sentences without content words are skipped) citing markers
    M is supported when ``|W(S) & W(C)| / |W(S)| >= 0.6``, W = content words, C = the texts of
    ``cited_contexts[m]`` for m in M, or of every context when S cites nothing. A marker missing
    from ``cited_contexts`` contributes no text. ``value = supported / sentences``; None for an
    abstention or an answer without content words."""
    if abstained:
        return _offline("faithfulness", None, reason="abstained")
    sentences = [(s, ns) for s, ns in split_sentences(answer_text) if content_words(s)]
    if not sentences:
        return _offline("faithfulness", None, reason="empty answer")
    words_of = {n: content_words(t) for n, t in cited_contexts.items()}
    everything = set().union(*words_of.values()) if words_of else set()
    rows = []
    for sentence, cited in sentences:
        ctx = set().union(*(words_of.get(n, set()) for n in cited)) if cited else everything
        words = content_words(sentence)
        share = len(words & ctx) / len(words)
        rows.append({"sentence": sentence, "cites": cited, "overlap": round(share, 4),
                     "supported": share >= SUPPORT_THRESHOLD,
                     "unknown_markers": [n for n in cited if n not in cited_contexts]})
    supported = sum(1 for r in rows if r["supported"])
    return _offline("faithfulness", supported / len(rows), supported=supported, sentences=len(rows),
                    threshold=SUPPORT_THRESHOLD, per_sentence=rows)


Embed = Callable[[Sequence[str]], Any]


def answer_relevance_offline(question: str, answer_text: str, embed: Embed | None = None, *,
                             abstained: bool = False) -> MetricResult:
    """How much the answer is about the question.

    With ``embed`` (texts -> L2-normalized vectors, shape (n, d)): ``value = max(0, q . a)``, the
    cosine of the question and the answer (markers stripped). Without: ``|Q & A| / |Q|`` over
    content words. None for an abstention, an empty answer, or (overlap) a question without
    content words."""
    if abstained:
        return _offline("answer_relevance", None, reason="abstained")
    answer = strip_markers(answer_text)
    if not answer:
        return _offline("answer_relevance", None, reason="empty answer")
    if embed is not None:
        vectors = np.asarray(embed([question, answer]), dtype=np.float64)
        cosine = float(vectors[0] @ vectors[1])
        return _offline("answer_relevance", max(0.0, min(1.0, cosine)), mode="cosine", cosine=cosine)
    q, a = content_words(question), content_words(answer)
    if not q:
        return _offline("answer_relevance", None, reason="question has no content words")
    return _offline("answer_relevance", len(q & a) / len(q), mode="overlap",
                    question_words=sorted(q), matched=sorted(q & a))


def squad_tokens(text: str) -> list[str]:
    """SQuAD normalization: lowercase, punctuation removed, articles a/an/the removed, split."""
    text = strip_markers(text).lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return _ARTICLES.sub(" ", text).split()


def _numbers(text: str, *, plain: bool = False) -> list[str]:
    found = (n.replace(",", "").rstrip(".") for n in _NUMBER.findall(strip_markers(text)))
    return list(dict.fromkeys(n.lstrip("0") or "0" if plain else n for n in found))


def _main_clause(text: str) -> str:
    return re.split(r",\s|\s\(|;|\s[-–—]\s", text.strip(), maxsplit=1)[0]


def correctness_offline(answer_text: str, reference: str | None, *, abstained: bool = False) -> MetricResult:
    """Token F1 against the reference (SQuAD): with common = multiset intersection of the
    :func:`squad_tokens`, ``P = |common| / |answer|``, ``R = |common| / |reference|``,
    ``F1 = 2PR / (P + R)`` (0 when nothing is common; 1 when both are empty). An abstention scores
    0.0. ``details.contains_reference_numbers``: every number of the reference (commas dropped)
    appears in the answer; None when the reference has none. No reference: None."""
    if reference is None or not reference.strip():
        return _offline("correctness", None, reason="no reference")
    ref_numbers = _numbers(reference)
    if abstained:
        return _offline("correctness", 0.0, reason="abstained", f1=0.0,
                        contains_reference_numbers=False if ref_numbers else None)
    pred, gold = squad_tokens(answer_text), squad_tokens(reference)
    common = sum((Counter(pred) & Counter(gold)).values())
    if not pred or not gold:
        f1 = precision = recall = float(pred == gold)
    elif common == 0:
        f1 = precision = recall = 0.0
    else:
        precision, recall = common / len(pred), common / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
    answer_numbers = set(_numbers(answer_text))
    missing = [n for n in ref_numbers if n not in answer_numbers]
    return _offline("correctness", f1, f1=f1, precision=precision, recall=recall,
                    reference_numbers=ref_numbers, missing_numbers=missing,
                    contains_reference_numbers=(not missing) if ref_numbers else None)


def answer_first_offline(answer_text: str, reference: str | None, *, abstained: bool = False,
                         min_recall: float = 0.5) -> MetricResult:
    """Does the answer's *first* sentence hold the reference answer? The reference's main clause
    (before its first comma, parenthesis, semicolon or dash: "2.9 percent" of "2.9 percent, about $84
    more a year") is held when the sentence has every number of it (leading zeros dropped: 2:08:47
    is 2, 8, 47) and at least ``min_recall`` of its content words. 1.0 or 0.0; an abstention scores
    0.0, no reference None. A reader stops early: the answer must lead with it."""
    if reference is None or not reference.strip():
        return _offline("answer_first", None, reason="no reference")
    sentences = [] if abstained else split_sentences(answer_text)
    if not sentences:
        return _offline("answer_first", 0.0, reason="abstained" if abstained else "empty answer")
    first, main = sentences[0][0], _main_clause(reference)
    missing_numbers = [n for n in _numbers(main, plain=True) if n not in set(_numbers(first, plain=True))]
    words = content_words(main)
    recall = len(words & content_words(first)) / len(words) if words else 1.0
    holds = not missing_numbers and recall >= min_recall
    return _offline("answer_first", float(holds), first_sentence=first, word_recall=round(recall, 3),
                    missing_numbers=missing_numbers)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def citation_precision_offline(citations: Sequence[Any], contexts_by_chunk_id: Mapping[str, str],
                               gold_spans: Sequence[str] = (), *, abstained: bool = False) -> MetricResult:
    """Share of citations whose cited chunk really contains the quoted sentence.

    A citation (``AnswerCitation`` or dict with chunk_id, quote, n) is valid when
    ``normalize_span(quote)`` (markers stripped, non-empty) is a substring of
    ``normalize_span(contexts_by_chunk_id[chunk_id])``. ``value = valid / citations``. No
    citations: None for an abstention, 0.0 for an answer. With gold spans,
    ``details.with_gold_span`` counts citations whose chunk contains one of them."""
    if not citations:
        return _offline("citation_precision", None if abstained else 0.0,
                        reason="abstained" if abstained else "answer without citations", citations=0)
    spans = [normalize_span(s) for s in gold_spans if s.strip()]
    valid, with_gold, invalid, missing = 0, 0, [], []
    for c in citations:
        chunk_id = str(_get(c, "chunk_id") or "")
        text = contexts_by_chunk_id.get(chunk_id)
        if text is None:
            missing.append(chunk_id)
        chunk = normalize_span(text or "")
        quote = normalize_span(strip_markers(str(_get(c, "quote") or "")))
        if quote and quote in chunk:
            valid += 1
        else:
            invalid.append({"n": _get(c, "n"), "chunk_id": chunk_id})
        with_gold += any(s in chunk for s in spans)
    details: dict[str, Any] = {"citations": len(citations), "valid": valid, "invalid": invalid,
                               "missing_context": missing}
    if spans:
        details["with_gold_span"] = with_gold
    return _offline("citation_precision", valid / len(citations), **details)


def abstention_correct(abstained: bool, answerable: bool) -> bool:
    """Right to abstain exactly when the question is unanswerable."""
    return abstained != answerable


def abstention_summary(pairs: Iterable[tuple[bool, bool]]) -> dict[str, Any]:
    """Over ``(abstained, answerable)`` pairs: accuracy, false abstentions (abstained on an
    answerable question) and missed abstentions (answered an unanswerable one), with their rates
    over the answerable / unanswerable questions (None when there are none)."""
    items = list(pairs)
    answerable = [a for a, ok in items if ok]
    unanswerable = [a for a, ok in items if not ok]
    false_abs = sum(answerable)
    missed = sum(1 for a in unanswerable if not a)
    correct = sum(abstention_correct(a, ok) for a, ok in items)
    return {"n": len(items), "accuracy": correct / len(items) if items else None,
            "false_abstentions": false_abs, "missed_abstentions": missed,
            "false_abstention_rate": false_abs / len(answerable) if answerable else None,
            "missed_abstention_rate": missed / len(unanswerable) if unanswerable else None}


def summarize_results(results: Iterable[MetricResult]) -> dict[str, Summary]:
    """Per metric name: mean of the defined values, count, count not applicable."""
    by_name: dict[str, list[float | None]] = {}
    for r in results:
        by_name.setdefault(r.name, []).append(r.value)
    return {name: summarize(values) for name, values in by_name.items()}


def latency(answer: Any) -> float | None:
    """The answer's ``timings["total"]`` (ms) - an ``Answer``, its dict, or None when absent."""
    timings = _get(answer, "timings") or {}
    total = timings.get("total")
    return float(total) if total is not None else None
