#!/usr/bin/env python
"""Build a dev golden set (and its corpus) from a RealTimeQA-format folder; optionally evaluate it.

    .venv/bin/python bench/realtimeqa_golden.py DATA_DIR --out OUT_DIR [--weeks N] [--eval] [--sample N]

DATA_DIR holds ``<week>_qa.jsonl`` (one quiz question per line) and ``<week>_gcs.jsonl`` (per
question, a ``search_result`` list of articles: url, title, text, authors, publish_date). This is
third-party data: everything is written to OUT_DIR only, never into the repository.

1. ``OUT_DIR/corpus.jsonl``: every article of the ``*_gcs.jsonl`` files, deduplicated by url.
2. ``OUT_DIR/golden.jsonl``: one case per question (deduplicated by ``question_id``):
   question = ``question_sentence``; reference_answer = the correct choice text(s);
   gold_spans = [the longest piece of the ``evidence`` snippet (HTML stripped, whitespace
   collapsed) of at least 8 words that some corpus article holds verbatim, cut to 20 words]
   (compared with ``newsrag.evaluation.metrics.normalize_span`` on both sides, the article text cleaned
   as the jsonl source cleans it); gold_urls = the (canonical) urls of every article holding it.
   A question without such a piece (or without evidence) is ``answerable: false`` with no gold:
   many retrieved articles predate the question, and the snippets are the quiz's own wording.
   tags = [question source lower-cased, week]. The file is validated with ``load_golden``.
   ``OUT_DIR/golden_diagnostics.jsonl`` gives per question the evidence, the span, the gold urls
   and a label-noise estimate: articles of the question's own search results published at most
   10 days before it that contain the correct choice text (``golden_stats.json``: the counts).
   ``--answerable-by answer`` also labels those questions answerable (gold_urls = those articles,
   type ``fact-answer-heuristic``): the snippets are rarely verbatim in the corpus.
3. ``--eval``: a private weaviate-server in a temporary NEWSRAG_HOME, the corpus ingested through
   the real pipeline (``jsonl`` source with a field mapping), ``run_eval`` on the golden set (or a
   seeded ``--sample``), the run saved to ``OUT_DIR/eval-history.sqlite`` and reported to
   ``OUT_DIR/reports``; prints the headline metrics with their 95 % bootstrap intervals. The
   server is always stopped and the temporary home removed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness.cli import logger, scratch_folder
from bench.harness.servers import private_weaviate, use_private_home

MIN_SPAN_WORDS = 8  # a shorter shared piece ("in new york for the") is not evidence
MAX_SPAN_WORDS = 20  # a longer shared piece is cut to its first 20 words
RECENT_DAYS = 10  # label-noise diagnostic: "recent" articles are at most this older than the question
FIELDS = {"url": "url", "title": "title", "text": "text", "published": "publish_date", "author": "authors"}
HEADLINE = ("hit@k", "recall@k", "mrr", "ndcg@k", "faithfulness", "answer_relevance", "correctness",
            "citation_precision", "abstention_accuracy", "latency_ms")
_TRAILING = re.compile(r"[\s.,;:!?\"'\u201c\u201d\u2018\u2019)]+$")
log = logger("rtqa")


# -- input ----------------------------------------------------------------------------------------
def weeks_in(data_dir: Path, limit: int | None) -> list[str]:
    weeks = sorted(p.name.removesuffix("_qa.jsonl") for p in data_dir.glob("*_qa.jsonl"))
    weeks = [w for w in weeks if (data_dir / f"{w}_gcs.jsonl").is_file()]
    if not weeks:
        raise SystemExit(f"bench/realtimeqa_golden.py: no <week>_qa.jsonl + <week>_gcs.jsonl pairs in {data_dir}")
    return weeks[:limit] if limit else weeks


class FormatError(ValueError):
    """The folder does not hold RealTimeQA-format data; the message names the file and line."""


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-blank line; :class:`FormatError` naming the file and line
    of the first line that is not a JSON object."""
    records = []
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line.rstrip("\r\n"))
                except json.JSONDecodeError as exc:
                    raise FormatError(f"{path}:{n}: invalid JSON: {exc.msg} (column {exc.colno})") from None
                if not isinstance(obj, dict):
                    raise FormatError(f"{path}:{n}: a line must hold a JSON object, not {type(obj).__name__}")
                records.append((n, obj))
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return records


def check_question(q: dict[str, Any], where: str) -> list[str]:
    """The correct choice texts of a ``*_qa.jsonl`` record; :class:`FormatError` (``where``:
    file:line) when a field the golden set needs is missing or malformed."""
    if not isinstance(q.get("question_id"), str | int) or not str(q.get("question_id")).strip():
        raise FormatError(f"{where}: missing or empty field 'question_id'")
    if not isinstance(q.get("question_sentence"), str) or not q["question_sentence"].strip():
        raise FormatError(f"{where}: missing or empty field 'question_sentence'")
    choices, answer = q.get("choices") or [], q.get("answer") or []
    if not isinstance(choices, list) or not isinstance(answer, list):
        raise FormatError(f"{where}: 'choices' and 'answer' must be lists")
    if not all(str(i).isdigit() and int(i) < len(choices) for i in answer):
        raise FormatError(f"{where}: 'answer' {answer!r} is not a list of indices into the {len(choices)} choices")
    if q.get("evidence") is not None and not isinstance(q["evidence"], str):
        raise FormatError(f"{where}: 'evidence' must be a string")
    return [str(choices[int(i)]) for i in answer]


def build_corpus(data_dir: Path, weeks: list[str], out: Path) -> tuple[list[dict[str, Any]], dict[str, set[str]], int]:
    """Articles deduplicated by url (first occurrence), written to ``out``; also the urls each
    question's own search returned, and how many results the files hold."""
    seen: dict[str, dict[str, Any]] = {}
    per_question: dict[str, set[str]] = {}
    total = 0
    for week in weeks:
        path = data_dir / f"{week}_gcs.jsonl"
        for n, record in read_jsonl(path):
            results = record.get("search_result", [record])
            if not isinstance(results, list):
                raise FormatError(f"{path}:{n}: 'search_result' must be a list of articles")
            qid = str(record.get("question_id") or "")
            for article in results:
                if not isinstance(article, dict):
                    raise FormatError(f"{path}:{n}: a search result must be an object (url, title, text, ...)")
                total += 1
                url = str(article.get("url") or "")
                if not url:
                    continue
                per_question.setdefault(qid, set()).add(url)
                seen.setdefault(url, article)
    articles = list(seen.values())
    with out.open("w", encoding="utf-8") as fh:
        for a in articles:
            fh.write(json.dumps(a, ensure_ascii=False) + "\n")
    return articles, per_question, total


def evidence_text(evidence: str) -> str:
    """The snippet's text: HTML stripped (lxml ``text_content``), whitespace collapsed."""
    if not evidence or not evidence.strip():
        return ""
    import lxml.html

    try:
        text = lxml.html.fragment_fromstring(evidence, create_parent="div").text_content()
    except Exception:  # noqa: BLE001 - not parseable as HTML: take it as text
        text = re.sub(r"<[^>]+>", " ", evidence)
    return " ".join(text.split())


class SpanIndex:
    """Word n-grams (n = ``MIN_SPAN_WORDS``) of every corpus article, for finding the longest piece
    of an evidence snippet that an article holds verbatim (after ``normalize_span``)."""

    def __init__(self, texts: list[str], n: int) -> None:
        self.texts, self.n = texts, n
        self.grams: dict[int, set[int]] = {}
        for i, text in enumerate(texts):
            words = text.split()
            for j in range(len(words) - n + 1):
                self.grams.setdefault(hash(" ".join(words[j:j + n])), set()).add(i)

    def longest(self, words: list[str]) -> tuple[int, int]:
        """(start, end) of the longest run of ``words`` (>= n words) that one article contains,
        (0, 0) when none does."""
        n, best = self.n, (0, 0)
        for i in range(len(words) - n + 1):
            docs = self.grams.get(hash(" ".join(words[i:i + n])))
            if not docs or (best[1] - best[0]) >= len(words) - i:
                continue
            end = i + n
            while end < len(words):
                nxt = self.grams.get(hash(" ".join(words[end - n + 1:end + 1])))
                if not nxt or not (docs & nxt):
                    break
                docs, end = docs & nxt, end + 1
            # consecutive n-grams may come from different places of an article: check the run itself
            while end - i >= n and not any(" ".join(words[i:end]) in self.texts[d] for d in docs):
                end -= 1
            if end - i >= n and end - i > best[1] - best[0]:
                best = (i, end)
        return best

    def containing(self, span: str) -> list[int]:
        return [i for i, text in enumerate(self.texts) if span in text]


def gold_span(evidence: str, index: SpanIndex) -> str | None:
    """The longest piece of ``evidence`` (>= 8 words) that some corpus article holds verbatim,
    cut to its first 20 words, in the evidence's own spelling; None when there is none."""
    from newsrag.evaluation.metrics import normalize_span

    norm = normalize_span(evidence).split()
    start, end = index.longest(norm)
    if end - start < MIN_SPAN_WORDS:
        return None
    end = min(end, start + MAX_SPAN_WORDS)
    original = evidence.split()  # same word count unless NFKC changed the spacing
    words = original if len(original) == len(norm) else norm
    return _TRAILING.sub("", " ".join(words[start:end])) or None


def _day(value: Any) -> date | None:
    try:
        return datetime.strptime(str(value)[:10].replace("-", "/"), "%Y/%m/%d").date()
    except ValueError:
        return None


def answer_in(answer: str, text: str) -> bool:
    """The choice text (normalized, outer quotes/punctuation dropped) as whole words in ``text``."""
    from newsrag.evaluation.metrics import normalize_span

    needle = _TRAILING.sub("", normalize_span(answer)).strip("\"'(")
    return bool(needle) and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", text) is not None


def build_golden(data_dir: Path, weeks: list[str], articles: list[dict[str, Any]],
                 per_question: dict[str, set[str]], out: Path, diag_out: Path | None,
                 answerable_by: str = "evidence") -> dict[str, Any]:
    from newsrag.evaluation.golden import GoldenCase, load_golden, write_jsonl
    from newsrag.evaluation.metrics import normalize_span
    from newsrag.ingest.normalize import canonical_url, clean_text

    # the text as the jsonl source will store it, normalized as the span metrics normalize it
    urls = [str(a.get("url")) for a in articles]
    texts = [normalize_span(clean_text(str(a.get("text") or ""))) for a in articles]
    published = {str(a.get("url")): _day(a.get("publish_date")) for a in articles}
    by_url = dict(zip(urls, texts, strict=True))
    index = SpanIndex(texts, MIN_SPAN_WORDS)
    cases: list[GoldenCase] = []
    diags: list[dict[str, Any]] = []
    seen: set[str] = set()
    duplicates = 0
    for week in weeks:
        qa_path = data_dir / f"{week}_qa.jsonl"
        for line, q in read_jsonl(qa_path):
            correct = check_question(q, f"{qa_path}:{line}")
            qid = str(q["question_id"])
            if qid in seen:
                duplicates += 1
                continue
            seen.add(qid)
            text = evidence_text(str(q.get("evidence") or ""))
            span = gold_span(text, index) if text else None
            gold = [urls[i] for i in index.containing(normalize_span(span))] if span else []
            # label-noise estimate (the label itself only with --answerable-by answer): the correct
            # choice appears in an article of the question's own search results published at most
            # RECENT_DAYS before the question
            own = per_question.get(qid, set())
            asked = _day(q.get("question_date"))
            recent = [u for u in sorted(own) if asked and (d := published.get(u))
                      and timedelta(0) <= asked - d <= timedelta(days=RECENT_DAYS)]
            answer_in_recent = [u for u in recent if correct and all(answer_in(c, by_url.get(u, "")) for c in correct)]
            by_answer = answerable_by == "answer" and not gold and bool(answer_in_recent)
            if by_answer:
                gold = answer_in_recent
            answerable = bool(gold)
            source = str(q.get("question_source") or "unknown").strip().lower()
            cases.append(GoldenCase(
                id=qid, question=str(q["question_sentence"]),
                reference_answer="; ".join(correct) or None,
                gold_urls=list(dict.fromkeys(canonical_url(u) for u in gold)),
                gold_spans=[span] if answerable and span and not by_answer else [],
                tags=[source, week], answerable=answerable,
                type=("fact-answer-heuristic" if by_answer else None)))
            diags.append({"id": qid, "source": source, "week": week, "question": q["question_sentence"],
                          "answer": correct, "evidence": text, "gold_span": span if span and not by_answer else None,
                          "label": "answer-heuristic" if by_answer else ("evidence" if answerable else "unanswerable"),
                          "gold_urls": gold, "gold_in_own_search_results": sorted(set(gold) & own),
                          "own_results": len(own), "own_results_recent": len(recent),
                          "answer_in_recent_own_results": answer_in_recent})
    write_jsonl(out, cases)
    if diag_out is not None:
        write_jsonl(diag_out, diags)
    golden = load_golden(out)  # must load: the runner will read it the same way
    by_source = Counter((c.tags[0], c.answerable) for c in golden.cases)
    evidence_unanswerable = [d for d in diags if not d["gold_span"]]
    return {"answerable_by": answerable_by, "questions": len(golden), "answerable": len(golden.answerable),
            "unanswerable": len(golden) - len(golden.answerable), "duplicate_question_ids_skipped": duplicates,
            "without_evidence": sum(1 for d in diags if not d["evidence"]),
            "gold_in_own_search_results": sum(1 for d in diags if d["gold_in_own_search_results"]),
            "with_recent_own_results": sum(1 for d in diags if d["own_results_recent"]),
            "unanswerable_by_evidence_but_answer_in_recent_own_results": sum(
                1 for d in evidence_unanswerable if d["answer_in_recent_own_results"]),
            "answerable_by_answer_heuristic": sum(1 for d in diags if d["label"] == "answer-heuristic"),
            "by_source": {f"{s} {'answerable' if a else 'unanswerable'}": n for (s, a), n in sorted(by_source.items())},
            "sha256": golden.sha256}


# -- evaluation -----------------------------------------------------------------------------------
def evaluate(args: argparse.Namespace, out_dir: Path, corpus_path: Path,
             plans: list[tuple[str, Path, int | None]]) -> dict[str, Any]:
    """Ingest once, then one run per (label, golden set, sample size) in ``plans``."""
    with scratch_folder("newsrag-rtqa-", keep=False, log=log) as tmp:
        home = tmp / "home"
        use_private_home(home)  # before anything reads PathSettings
        with private_weaviate(home) as weaviate:
            state = weaviate.state
            log(f"weaviate-server {state.version} pid {state.pid} on {state.http_url}")
            res = _ingest_and_evaluate(args, out_dir, corpus_path, plans, tmp)
        log("weaviate-server stopped")
    return res


def _ingest_and_evaluate(args: argparse.Namespace, out_dir: Path, corpus_path: Path,
                         plans: list[tuple[str, Path, int | None]], tmp: Path) -> dict[str, Any]:
    from newsrag.core.settings import EmbeddingSettings, IngestSettings, Settings, load
    from newsrag.embeddings.local import LocalEmbedder
    from newsrag.evaluation.history import HistoryStore
    from newsrag.ingest.context import IngestContext
    from newsrag.store.weaviate import WeaviateStore

    home = tmp / "home"
    store = ctx = embedder = history = None
    try:
        store = WeaviateStore(Settings(), collection=f"RtqaGolden{uuid.uuid4().hex[:8]}")
        embedder = LocalEmbedder(load(EmbeddingSettings, provider="local"))
        ingest_settings = load(IngestSettings, state_file=home / "ingest-state.sqlite",
                               embedding_cache=home / "embedding-cache.sqlite")
        ctx = IngestContext(ingest_settings, store=store, embedder=embedder, home=home, base_dir=tmp)
        res = _ingest(ctx, corpus_path)
        history = HistoryStore(out_dir / "eval-history.sqlite")
        res["runs"] = [_evaluate_plan(args, out_dir, plan, store, embedder, history) for plan in plans]
        return res
    finally:
        for thing in (history, ctx, store, embedder):
            if thing is not None:
                try:
                    thing.close()
                except Exception as exc:  # noqa: BLE001 - keep going: the server must stop
                    log(f"closing {type(thing).__name__} failed: {exc}")


def _ingest(ctx: Any, corpus_path: Path) -> dict[str, Any]:
    """The corpus through the real pipeline (a ``jsonl`` source with a field mapping)."""
    from newsrag.ingest.pipeline import run_source
    from newsrag.ingest.registry import parse_source

    res: dict[str, Any] = {}
    spec = parse_source({"id": "realtimeqa", "type": "jsonl", "path": str(corpus_path), "fields": FIELDS})
    log(f"ingesting {corpus_path} through the pipeline ...")
    t = time.perf_counter()
    report = run_source(spec, ctx)
    res["ingest_s"] = round(time.perf_counter() - t, 1)
    res["ingest"] = report.model_dump(mode="json", exclude={"failed"})
    res["ingest_failures"] = [f.model_dump() for f in report.failed][:10]
    log(f"ingest: {report.status} in {res['ingest_s']}s: seen {report.items_seen}, new {report.new}, "
        f"near-duplicates {report.duplicates}, skipped {report.skipped}, failed {len(report.failed)}, "
        f"chunks embedded {report.chunks_embedded}, written {report.chunks_written}"
        + (f", error {report.error}" if report.error else ""))
    if report.status == "failed":
        raise SystemExit(f"ingestion failed: {report.error}")
    return res


def _evaluate_plan(args: argparse.Namespace, out_dir: Path, plan: tuple[str, Path, int | None],
                   store: Any, embedder: Any, history: Any) -> dict[str, Any]:
    """One ``run_eval`` of a golden set (or its seeded sample), saved to the history and reported."""
    from newsrag.evaluation.golden import load_golden
    from newsrag.evaluation.report import write_report
    from newsrag.evaluation.runner import run_eval

    label, golden_path, sample = plan
    golden = load_golden(golden_path)
    total = min(sample or len(golden), len(golden))
    t = time.perf_counter()

    def progress(done: int, n: int, r: Any) -> None:
        if done % 10 == 0 or done == n:
            log(f"evaluated {done}/{n} ({time.perf_counter() - t:.0f}s)")

    log(f"[{label}] evaluating {total} of {len(golden)} questions of {golden_path.name} (seed {args.seed}) ...")
    # today's figure (#14's baseline): questions read without their time expressions, asked now
    from newsrag.core.settings import Settings

    baseline = Settings({"NEWSRAG_ANSWER_TEMPORAL": "false"})
    run = run_eval(golden, store=store, embedder=embedder, sample=sample, seed=args.seed, progress=progress,
                   settings=baseline)
    history.save(run)
    report_path = str(write_report(run, history, out_dir / "reports"))
    return {"label": label, "run": run, "report": report_path, "eval_s": round(time.perf_counter() - t, 1)}


def print_run(item: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    run = item["run"]
    console = Console(width=max(150, shutil.get_terminal_size().columns))
    console.rule(f"{item['label']}: {Path(run.golden_path).name}")
    n_ans = sum(1 for r in run.results if r.answerable)
    t = Table(title=f"run {run.run_id}: {len(run.results)} questions ({n_ans} answerable, "
                    f"{len(run.results) - n_ans} unanswerable), top_k {run.retrieval.top_k}, "
                    f"{run.retrieval.mode} alpha {run.retrieval.alpha}, rerank {run.retrieval.rerank}, "
                    f"generator {run.generator}")
    for col, just in (("metric", "left"), ("mean", "right"), ("95% CI", "right"), ("n", "right"),
                      ("undefined", "right"), ("method", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for name in HEADLINE:
        a = run.aggregates.get(name)
        if a is None:
            t.add_row(name, "-", "-", "0", "-", "-")
            continue
        fmt = (lambda v: f"{v:.0f}") if name == "latency_ms" else (lambda v: f"{v:.3f}")
        t.add_row(name, fmt(a.mean) if a.mean is not None else "-",
                  f"[{fmt(a.low)}, {fmt(a.high)}]" if a.low is not None else "-", str(a.n), str(a.n_undefined),
                  a.method)
    console.print(t)

    g = Table(title="per tag (source / week) and per type")
    for col in ("tag", "n", "hit@k", "mrr", "correctness", "abstention_accuracy", "faithfulness"):
        g.add_column(col, justify="left" if col == "tag" else "right")
    counts = Counter(tag for r in run.results for tag in r.tags)
    counts.update(f"type:{r.type}" for r in run.results)
    def cell(aggs: dict[str, Any], m: str) -> str:
        a = aggs.get(m)
        return f"{a.mean:.2f} (n={a.n})" if a is not None and a.mean is not None else "-"

    groups = {**run.per_tag, **{f"type:{k}": v for k, v in run.per_type.items()}}
    for tag, aggs in groups.items():
        g.add_row(tag, str(counts[tag]), *(cell(aggs, m) for m in ("hit@k", "mrr", "correctness",
                                                                   "abstention_accuracy", "faithfulness")))
    console.print(g)
    abst = Counter((r.answerable, r.abstained) for r in run.results)
    console.print(f"abstentions: answerable answered {abst[(True, False)]}, answerable abstained {abst[(True, True)]}, "
                  f"unanswerable answered {abst[(False, False)]}, unanswerable abstained {abst[(False, True)]}")
    errors = [r for r in run.results if r.error]
    if errors:
        console.print(f"[yellow]{len(errors)} question(s) with errors[/], first: {errors[0].case_id}: {errors[0].error}")
    console.print(f"timings: {run.timings}")
    console.print(f"report: {item['report']} (evaluation {item['eval_s']}s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/realtimeqa_golden.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", metavar="DATA_DIR", type=Path, help="folder with <week>_qa.jsonl + <week>_gcs.jsonl")
    parser.add_argument("--out", required=True, type=Path, help="output folder (outside the repository)")
    parser.add_argument("--weeks", type=int, default=None, help="use only the first N weeks (sorted)")
    parser.add_argument("--eval", action="store_true", help="ingest the corpus into a private Weaviate and evaluate")
    parser.add_argument("--sample", type=int, default=None, help="evaluate a seeded sample of N questions")
    parser.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    parser.add_argument("--also-answer-heuristic", action="store_true",
                        help="also write golden_answer_heuristic.jsonl (--answerable-by answer) and, with --eval, "
                             "evaluate all its answerable cases in a second run on the same index")
    parser.add_argument("--answerable-by", choices=("evidence", "answer"), default="evidence",
                        help="evidence (default): answerable only when a verbatim evidence piece is in the corpus; "
                             "answer: also when the correct choice text is in one of the question's own search "
                             f"results published <= {RECENT_DAYS} days before it (a heuristic; type "
                             "fact-answer-heuristic, gold_urls only)")
    args = parser.parse_args(argv)
    if args.weeks is not None and args.weeks < 1:
        parser.error("--weeks must be >= 1")
    if args.sample is not None and args.sample < 1:
        parser.error("--sample must be >= 1")
    data_dir, out_dir = args.data_dir.expanduser().resolve(), args.out.expanduser().resolve()
    repo = Path(__file__).resolve().parents[1]
    if out_dir == repo or repo in out_dir.parents:
        parser.error(f"--out must be outside the repository ({repo}): the corpus is third-party data")
    if not data_dir.is_dir():
        parser.error(f"no such folder: {data_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    weeks = weeks_in(data_dir, args.weeks)
    corpus_path, golden_path = out_dir / "corpus.jsonl", out_dir / "golden.jsonl"
    try:
        articles, per_question, total = build_corpus(data_dir, weeks, corpus_path)
        log(f"weeks {', '.join(weeks)}: {total} search results -> {len(articles)} articles (by url) in {corpus_path}")
        stats = build_golden(data_dir, weeks, articles, per_question, golden_path,
                             out_dir / "golden_diagnostics.jsonl", args.answerable_by)
    except FormatError as exc:
        print(f"bench/realtimeqa_golden.py: error: {exc}", file=sys.stderr)
        return 2
    stats["build_s"] = round(time.perf_counter() - t0, 1)
    (out_dir / "golden_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    print(f"golden set {golden_path}: {stats['questions']} questions, {stats['answerable']} answerable, "
          f"{stats['unanswerable']} unanswerable ({stats['without_evidence']} without evidence; "
          f"{stats['duplicate_question_ids_skipped']} duplicate question ids skipped; "
          f"gold found in the question's own search results for {stats['gold_in_own_search_results']})")
    print(f"label-noise estimate: {stats['with_recent_own_results']} questions have own search results published "
          f"<= {RECENT_DAYS} days before them; {stats['unanswerable_by_evidence_but_answer_in_recent_own_results']} "
          f"without a verbatim evidence piece have the correct choice text in such an article"
          + (f" (labelled answerable: {stats['answerable_by_answer_heuristic']})" if args.answerable_by == "answer" else ""))
    for key, n in stats["by_source"].items():
        print(f"  {key}: {n}")
    plans: list[tuple[str, Path, int | None]] = [(f"answerable by {args.answerable_by}", golden_path, args.sample)]
    if args.also_answer_heuristic and args.answerable_by != "answer":
        heur = out_dir / "golden_answer_heuristic.jsonl"
        hstats = build_golden(data_dir, weeks, articles, per_question, heur, None, "answer")
        (out_dir / "golden_answer_heuristic_stats.json").write_text(json.dumps(hstats, indent=2) + "\n",
                                                                    encoding="utf-8")
        from newsrag.evaluation.golden import load_golden, write_jsonl

        only = out_dir / "golden_answer_heuristic_answerable.jsonl"
        write_jsonl(only, load_golden(heur).answerable)
        print(f"answer-heuristic golden set {heur}: {hstats['questions']} questions, {hstats['answerable']} "
              f"answerable ({hstats['answerable_by_answer_heuristic']} by the heuristic); its answerable cases: {only}")
        if hstats["answerable"]:
            plans.append(("answer-heuristic, answerable cases only", only, None))
    if args.eval:
        res = evaluate(args, out_dir, corpus_path, plans)
        print(f"ingest: {res['ingest']['status']} in {res['ingest_s']}s, new {res['ingest']['new']}, "
              f"near-duplicates {res['ingest']['duplicates']}, skipped {res['ingest']['skipped']}, "
              f"chunks written {res['ingest']['chunks_written']}; failures: {res['ingest_failures'][:3]}")
        for item in res["runs"]:
            print_run(item)
    print(f"total runtime {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
