"""BEIR-format retrieval benchmarks: load a folder, map chunk hits to documents, score a run.

A BEIR folder holds ``corpus.jsonl`` (``{"_id", "title", "text"}``), queries
(``queries.<split>.jsonl`` or ``queries.jsonl``, ``{"_id", "text"}``) and ``qrels/<split>.tsv``
(``query-id<TAB>corpus-id<TAB>score``, an optional header line; the four-column TREC form
``qid 0 docid score`` is accepted too). Every format error names the file and the line.

With a split-specific queries file every query must have judgments. With the shared
``queries.jsonl`` (all splits in one file, as BEIR ships it) queries without judgments in this
split are simply not part of it and are skipped.

Scores use :mod:`newsrag.evaluation.metrics`, the same implementation the golden-set runs use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsrag.core.errors import NewsragError
from newsrag.core.records import Hit
from newsrag.evaluation.metrics import doc_ranking, mrr, ndcg_at_k, recall_at_k, summarize

Qrels = dict[str, dict[str, int]]
# The figures the BEIR tables publish, by name; "mrr@10" is the MS MARCO convention.
METRICS = ("ndcg@10", "recall@100", "mrr@10")


class BeirFormatError(NewsragError):
    """A BEIR folder is incomplete or malformed; the message names the file and line."""


@dataclass(frozen=True)
class BeirDataset:
    folder: Path
    split: str
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # judged query id -> text
    qrels: Qrels  # query id -> {doc id: grade}
    skipped_queries: int = 0  # in a shared queries.jsonl but not judged in this split
    unknown_docs: list[str] = field(default_factory=list)  # judged ids absent from the corpus


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BeirFormatError(f"{path}:{n}: invalid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise BeirFormatError(f"{path}:{n}: a line must hold a JSON object")
            yield n, record


def _record_id(path: Path, n: int, record: dict[str, Any]) -> str:
    value = record.get("_id")
    if value in (None, ""):
        raise BeirFormatError(f"{path}:{n}: missing \"_id\"")
    return str(value)


def load_corpus(path: Path) -> dict[str, tuple[str, str]]:
    if not path.is_file():
        raise BeirFormatError(f"{path}: the corpus file is missing")
    corpus: dict[str, tuple[str, str]] = {}
    first_line: dict[str, int] = {}
    for n, record in _jsonl(path):
        doc_id = _record_id(path, n, record)
        if doc_id in corpus:
            raise BeirFormatError(f"{path}:{n}: duplicate document id {doc_id!r} "
                                  f"(first on line {first_line[doc_id]})")
        title, text = str(record.get("title") or ""), str(record.get("text") or "")
        if not (title.strip() or text.strip()):
            raise BeirFormatError(f"{path}:{n}: document {doc_id!r} has neither title nor text")
        corpus[doc_id], first_line[doc_id] = (title, text), n
    if not corpus:
        raise BeirFormatError(f"{path}: the corpus is empty")
    return corpus


def load_qrels(path: Path) -> tuple[Qrels, dict[str, int]]:
    """``(qrels, line of each query's first judgment)``."""
    if not path.is_file():
        raise BeirFormatError(f"{path}: the qrels file is missing (expected qrels/<split>.tsv)")
    qrels: Qrels = {}
    lines: dict[str, int] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        cols = line.split()
        if not cols or (n == 1 and cols[0].lower() in ("query-id", "query_id", "qid")):
            continue
        if len(cols) not in (3, 4):
            raise BeirFormatError(f"{path}:{n}: expected 'query-id corpus-id score', got {line!r}")
        qid, doc_id, grade = (cols[0], cols[1], cols[2]) if len(cols) == 3 else (cols[0], cols[2], cols[3])
        try:
            qrels.setdefault(qid, {})[doc_id] = int(grade)
        except ValueError:
            raise BeirFormatError(f"{path}:{n}: the score {grade!r} is not an integer") from None
        lines.setdefault(qid, n)
    if not qrels:
        raise BeirFormatError(f"{path}: no judgments")
    return qrels, lines


def _queries_file(folder: Path, split: str) -> tuple[Path, bool]:
    specific = folder / f"queries.{split}.jsonl"
    if specific.is_file():
        return specific, True
    shared = folder / "queries.jsonl"
    if shared.is_file():
        return shared, False
    raise BeirFormatError(f"{folder}: no queries file (expected queries.{split}.jsonl or queries.jsonl)")


def load_queries(path: Path, qrels: Qrels, split_specific: bool) -> tuple[dict[str, str], int]:
    queries: dict[str, str] = {}
    skipped = 0
    for n, record in _jsonl(path):
        qid = _record_id(path, n, record)
        if qid not in qrels:
            if split_specific:
                raise BeirFormatError(f"{path}:{n}: query {qid!r} has no judgments in the qrels")
            skipped += 1
            continue
        if qid in queries:
            raise BeirFormatError(f"{path}:{n}: duplicate query id {qid!r}")
        text = str(record.get("text") or "").strip()
        if not text:
            raise BeirFormatError(f"{path}:{n}: query {qid!r} has no text")
        queries[qid] = text
    return queries, skipped


def load_beir(folder: str | Path, split: str = "train") -> BeirDataset:
    """Load and cross-check a BEIR folder: every judged query exists, ids are unique."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise BeirFormatError(f"{root}: not a folder")
    qrels_path = root / "qrels" / f"{split}.tsv"
    qrels, qrel_lines = load_qrels(qrels_path)
    corpus = load_corpus(root / "corpus.jsonl")
    queries_path, specific = _queries_file(root, split)
    queries, skipped = load_queries(queries_path, qrels, specific)
    for qid, line in qrel_lines.items():
        if qid not in queries:
            raise BeirFormatError(f"{qrels_path}:{line}: query {qid!r} is judged but not in {queries_path.name}")
    unknown = sorted({d for judged in qrels.values() for d in judged if d not in corpus})
    return BeirDataset(root, split, corpus, queries, qrels, skipped, unknown)


def write_corpus_jsonl(dataset: BeirDataset, out: Path) -> Path:
    """The corpus as one JSONL a ``jsonl`` source reads with ``fields: {id: _id, url: url}``."""
    with out.open("w", encoding="utf-8") as fh:
        for doc_id, (title, text) in dataset.corpus.items():
            fh.write(json.dumps({"_id": doc_id, "title": title, "text": text}, ensure_ascii=False) + "\n")
    return out


def ranked_documents(hits: Sequence[Hit], corpus_id: Mapping[str, str]) -> list[str]:
    """Corpus ids in the order of each document's best chunk (the hits are ranked, best first).

    ``corpus_id`` maps a stored ``doc_id`` to the BEIR id; a hit from another document (none in a
    fresh collection) keeps its stored key and simply never counts as relevant."""
    return [corpus_id.get(key, key) for key in doc_ranking(hits)]


def score_query(ranked: Sequence[str], judged: Mapping[str, int]) -> dict[str, float | None]:
    return {"ndcg@10": ndcg_at_k(ranked, judged, 10), "recall@100": recall_at_k(ranked, judged, 100),
            "mrr@10": mrr(ranked, judged, 10)}


def score_run(run: Mapping[str, Sequence[str]], qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over the judged queries; a judged query missing from ``run`` scores 0."""
    per_query = [score_query(run.get(qid, []), judged) for qid, judged in qrels.items()]
    out: dict[str, float] = {}
    for name in METRICS:
        summary = summarize(q[name] for q in per_query)
        out[name] = summary.mean if summary.mean is not None else 0.0
    return out
