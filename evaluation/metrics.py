"""Retrieval metrics over a ranked list of ids: one implementation for golden runs and benchmarks.

Every metric takes ``ranked`` (retrieved ids, best first, in the order given - ties keep that order,
nothing is re-sorted) and ``relevant``: a set of relevant ids (binary relevance, gain 1) or a
mapping id -> gain (graded relevance; ids with gain <= 0 are not relevant). Conventions:

* **no relevant ids** (no gold): the metric is undefined and returns ``None``; :func:`summarize`
  leaves it out of the mean and counts it separately.
* **empty retrieval** (with gold): ``0.0``.
* **k larger than the list**: the list is simply shorter than k; precision still divides by k
  (the trec_eval convention: an empty slot is a miss).
* **duplicates**: only the first occurrence of an id counts; later copies keep their rank
  position but are not relevant (an id cannot be found twice).
* ``k`` must be >= 1.

Chunk hits are mapped to gold with :func:`relevant_chunks` (url / doc id / gold span) and to a
document ranking with :func:`doc_ranking`; :func:`doc_relevance` gives both the document ranking
and the relevant document set for document-level metrics.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from newsrag.core.records import Hit

Relevance = Collection[str] | Mapping[str, float]


# -- metrics over ids --------------------------------------------------------------------------


def _gains(relevant: Relevance) -> dict[str, float]:
    if isinstance(relevant, Mapping):
        return {str(k): float(v) for k, v in relevant.items() if float(v) > 0}
    return {str(k): 1.0 for k in relevant}


def _check_k(k: int | None) -> None:
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1 (got {k})")


def _judged(ranked: Sequence[str], gains: Mapping[str, float], k: int | None) -> list[float]:
    """Gain per rank position of ``ranked[:k]``; a repeated id gains 0."""
    seen: set[str] = set()
    out = []
    for doc in list(ranked)[:k] if k is not None else ranked:
        out.append(0.0 if doc in seen else gains.get(doc, 0.0))
        seen.add(doc)
    return out


def hit_at_k(ranked: Sequence[str], relevant: Relevance, k: int) -> float | None:
    """1.0 if any of the top ``k`` is relevant, else 0.0."""
    _check_k(k)
    gains = _gains(relevant)
    if not gains:
        return None
    return 1.0 if any(g > 0 for g in _judged(ranked, gains, k)) else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Relevance, k: int) -> float | None:
    """|relevant ids in the top k| / |relevant ids|."""
    _check_k(k)
    gains = _gains(relevant)
    if not gains:
        return None
    found = sum(1 for g in _judged(ranked, gains, k) if g > 0)
    return found / len(gains)


def precision_at_k(ranked: Sequence[str], relevant: Relevance, k: int) -> float | None:
    """|relevant ids in the top k| / k (k, not the list length: missing slots are misses)."""
    _check_k(k)
    gains = _gains(relevant)
    if not gains:
        return None
    found = sum(1 for g in _judged(ranked, gains, k) if g > 0)
    return found / k


def mrr(ranked: Sequence[str], relevant: Relevance, k: int | None = None) -> float | None:
    """1 / rank of the first relevant id (ranks from 1), within the top ``k`` when given; 0.0 if
    none is found. Averaged over questions this is the mean reciprocal rank."""
    _check_k(k)
    gains = _gains(relevant)
    if not gains:
        return None
    for rank, gain in enumerate(_judged(ranked, gains, k), start=1):
        if gain > 0:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Relevance, k: int) -> float | None:
    """DCG@k / IDCG@k with linear gains and the log2 discount (as trec_eval / BEIR)::

        DCG@k  = sum_{i=1..k} gain(ranked[i]) / log2(i + 1)
        IDCG@k = the same over the relevant gains sorted in decreasing order

    Binary relevance (a set) uses gain 1."""
    _check_k(k)
    gains = _gains(relevant)
    if not gains:
        return None
    dcg = sum(g / math.log2(i + 1) for i, g in enumerate(_judged(ranked, gains, k), start=1))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 1) for i, g in enumerate(ideal, start=1))
    return dcg / idcg


@dataclass(frozen=True)
class Summary:
    """Mean over the defined values; ``n`` defined values, ``n_undefined`` left out (None)."""

    mean: float | None
    n: int
    n_undefined: int


def summarize(values: Iterable[float | None]) -> Summary:
    items = list(values)
    defined = [float(v) for v in items if v is not None]
    mean = sum(defined) / len(defined) if defined else None
    return Summary(mean, len(defined), len(items) - len(defined))


# -- chunks and documents ----------------------------------------------------------------------

_MARKER = re.compile(r"\[\d+\]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+(?=[.,;:!?])")
_QUOTE_MAP = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                            "\u2013": "-", "\u2014": "-", "\u00a0": " "})


def normalize_span(text: str) -> str:
    """NFKC, curly quotes and dashes made plain, case-folded, whitespace collapsed to one space."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTE_MAP).casefold()
    return " ".join(text.split())


def normalize_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, no trailing slash; ``file://`` becomes the path."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme == "file":
        return parts.path.rstrip("/")
    if not parts.scheme:
        return url.rstrip("/")
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def url_matches(url: str, gold: str) -> bool:
    """Equal after :func:`normalize_url`; a gold url without a scheme (a path relative to the
    corpus, e.g. ``notes/x.md``) also matches any url whose path ends with ``/`` + it."""
    if not url or not gold:
        return False
    u, g = normalize_url(url), normalize_url(gold)
    if u == g:
        return True
    return not urlsplit(gold.strip()).scheme and bool(g) and u.endswith("/" + g.lstrip("./"))


def _hit_text(hit: Hit) -> str:
    return hit.chunk.text


def doc_key(hit: Hit) -> str:
    """The document a chunk belongs to: its ``doc_id``, else its url, else the chunk uuid."""
    return hit.chunk.doc_id or hit.chunk.url or hit.uuid


def _chunk_is_relevant(hit: Hit, urls: Sequence[str], doc_ids: set[str], spans: Sequence[str]) -> bool:
    if doc_ids and hit.chunk.doc_id in doc_ids:
        return True
    if any(url_matches(hit.chunk.url, g) for g in urls):
        return True
    if spans:
        text = normalize_span(_hit_text(hit))
        return any(s and s in text for s in spans)
    return False


def relevant_chunks(hits: Sequence[Hit], gold_urls: Sequence[str] = (), gold_doc_ids: Sequence[str] = (),
                    gold_spans: Sequence[str] = ()) -> list[bool]:
    """Per hit: its url matches a gold url (:func:`url_matches`), its ``doc_id`` is a gold doc id, or
    its text contains a gold span after :func:`normalize_span` on both sides. No gold: all False."""
    spans = [normalize_span(s) for s in gold_spans if s.strip()]
    ids = {d for d in gold_doc_ids if d}
    return [_chunk_is_relevant(h, gold_urls, ids, spans) for h in hits]


def doc_ranking(hits: Sequence[Hit]) -> list[str]:
    """Document keys (:func:`doc_key`) in the order of each document's best (first) chunk; the hits
    are taken as ranked in the order given, duplicates removed."""
    out: list[str] = []
    seen: set[str] = set()
    for h in hits:
        key = doc_key(h)
        if key not in seen:
            seen.add(key)
            out.append(key)
    return out


def doc_relevance(hits: Sequence[Hit], gold_urls: Sequence[str] = (), gold_doc_ids: Sequence[str] = (),
                  gold_spans: Sequence[str] = ()) -> tuple[list[str], set[str]]:
    """``(ranking, relevant)`` for document-level metrics.

    ``ranking`` is :func:`doc_ranking`. ``relevant`` holds the key of every retrieved document with
    a relevant chunk, plus a placeholder ``"gold:<id>"`` for each gold document that was not
    retrieved, so recall divides by the number of gold documents. The gold documents are the gold
    urls and doc ids (list each document once, by url or by doc id), or the gold spans when a case
    has neither. A retrieved near-copy that contains a gold span counts as one more relevant
    document (found), next to the listed one (missed unless retrieved too)."""
    ranking = doc_ranking(hits)
    flags = relevant_chunks(hits, gold_urls, gold_doc_ids, gold_spans)
    relevant = {doc_key(h) for h, ok in zip(hits, flags, strict=True) if ok}
    units: list[tuple[str, list[bool]]] = []
    if gold_urls or gold_doc_ids:
        units += [(u, relevant_chunks(hits, gold_urls=[u])) for u in gold_urls]
        units += [(d, relevant_chunks(hits, gold_doc_ids=[d])) for d in gold_doc_ids]
    else:
        units += [(s, relevant_chunks(hits, gold_spans=[s])) for s in gold_spans if s.strip()]
    for unit, found in units:
        if not any(found):
            relevant.add(f"gold:{unit}")
    return ranking, relevant


def strip_markers(text: str) -> str:
    """``text`` without ``[n]`` citation markers (and the space before the punctuation they leave),
    whitespace collapsed: "passed 7-4 [1]." -> "passed 7-4."."""
    return " ".join(_SPACE_BEFORE_PUNCT.sub("", _MARKER.sub(" ", text)).split())
