"""BEIR folders: loading, bad input named by file and line, chunk-to-document mapping, and scores
against hand-computed values (tests/fixtures/beir-tiny)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from newsrag.core.records import ChunkRecord, Hit
from newsrag.evaluation.beir import (
    BeirFormatError,
    load_beir,
    ranked_documents,
    score_run,
    write_corpus_jsonl,
)
from newsrag.ingest.models import doc_id_for

pytestmark = pytest.mark.unit

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "beir-tiny"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return Path(shutil.copytree(TINY, tmp_path / "beir"))


def test_the_tiny_folder_loads_with_graded_judgments_and_skips_other_splits() -> None:
    ds = load_beir(TINY, "test")
    assert sorted(ds.corpus) == ["d1", "d2", "d3", "d4", "d5"]
    assert ds.corpus["d5"][0] == "Orchard harvest record"
    assert sorted(ds.queries) == ["q1", "q2", "q3"]  # q9 belongs to another split
    assert ds.skipped_queries == 1
    assert ds.qrels["q2"] == {"d5": 2, "d4": 1}
    assert ds.unknown_docs == []


def test_scores_equal_hand_computed_values() -> None:
    qrels = load_beir(TINY, "test").qrels
    run = {"q1": ["d2", "d1", "d4", "d3"], "q2": ["d5", "d2"]}  # q3 retrieved nothing
    q1_ndcg = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))  # 0.650921
    q2_ndcg = 2 / (2 + 1 / math.log2(3))  # graded: d5 gains 2, d4 (missed) 1 -> 0.760189
    scores = score_run(run, qrels)
    assert scores["ndcg@10"] == pytest.approx((q1_ndcg + q2_ndcg + 0) / 3)
    assert scores["ndcg@10"] == pytest.approx(0.470370, abs=1e-6)
    assert scores["recall@100"] == pytest.approx((1.0 + 0.5 + 0) / 3)
    assert scores["mrr@10"] == pytest.approx((0.5 + 1.0 + 0) / 3)


def test_mrr_at_10_and_ndcg_at_10_ignore_relevant_documents_below_rank_10() -> None:
    qrels = {"q": {"gold": 1}}
    run = {"q": [f"x{i}" for i in range(10)] + ["gold"]}  # rank 11
    assert score_run(run, qrels) == {"ndcg@10": 0.0, "recall@100": 1.0, "mrr@10": 0.0}


def chunk(doc: str, index: int, score: float) -> Hit:
    return Hit(uuid=f"{doc}-{index}", score=score, chunk=ChunkRecord(doc_id=doc_id_for(doc), chunk_index=index))


def test_chunk_hits_map_to_documents_in_the_order_of_each_documents_best_chunk() -> None:
    corpus_id = {doc_id_for(d): d for d in ("d1", "d2", "d3")}
    hits = [chunk("d3", 1, 0.9), chunk("d1", 0, 0.8), chunk("d3", 0, 0.7), chunk("d2", 2, 0.6), chunk("d1", 1, 0.5)]
    assert ranked_documents(hits, corpus_id) == ["d3", "d1", "d2"]


def test_a_hit_from_outside_the_corpus_keeps_its_key_and_never_counts() -> None:
    corpus_id = {doc_id_for("d1"): "d1"}
    hits = [Hit(uuid="u", score=1.0, chunk=ChunkRecord(doc_id="stranger")), chunk("d1", 0, 0.5)]
    ranked = ranked_documents(hits, corpus_id)
    assert ranked == ["stranger", "d1"]
    assert score_run({"q": ranked}, {"q": {"d1": 1}})["mrr@10"] == 0.5


def test_write_corpus_jsonl_round_trips_every_document(tmp_path: Path) -> None:
    ds = load_beir(TINY, "test")
    out = write_corpus_jsonl(ds, tmp_path / "c.jsonl")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["_id"]: (r["title"], r["text"]) for r in rows} == ds.corpus


# -- bad input: the file and the line are named --------------------------------------------------


def test_missing_qrels_names_the_expected_file(tiny: Path) -> None:
    with pytest.raises(BeirFormatError, match=r"qrels/train\.tsv: the qrels file is missing"):
        load_beir(tiny, "train")


def test_a_split_specific_query_without_judgments_names_file_and_line(tiny: Path) -> None:
    (tiny / "queries.jsonl").rename(tiny / "queries.test.jsonl")  # now every query must be judged
    with pytest.raises(BeirFormatError, match=r"queries\.test\.jsonl:4: query 'q9' has no judgments"):
        load_beir(tiny, "test")


def test_a_judged_query_missing_from_the_queries_names_the_qrels_line(tiny: Path) -> None:
    with (tiny / "qrels" / "test.tsv").open("a") as fh:
        fh.write("q404\td1\t1\n")
    with pytest.raises(BeirFormatError, match=r"test\.tsv:7: query 'q404' is judged but not in queries\.jsonl"):
        load_beir(tiny, "test")


def test_duplicate_document_ids_name_both_lines(tiny: Path) -> None:
    with (tiny / "corpus.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "d2", "title": "Again", "text": "A second d2."}) + "\n")
    with pytest.raises(BeirFormatError, match=r"corpus\.jsonl:6: duplicate document id 'd2' \(first on line 2\)"):
        load_beir(tiny, "test")


def test_an_empty_corpus_is_an_error(tiny: Path) -> None:
    (tiny / "corpus.jsonl").write_text("\n")
    with pytest.raises(BeirFormatError, match=r"corpus\.jsonl: the corpus is empty"):
        load_beir(tiny, "test")


@pytest.mark.parametrize(("name", "content", "message"), [
    ("corpus.jsonl", '{"_id": "d1", "title": "x"\n', r"corpus\.jsonl:1: invalid JSON"),
    ("corpus.jsonl", '{"title": "no id", "text": "t"}\n', r"corpus\.jsonl:1: missing \"_id\""),
    ("corpus.jsonl", '["not", "an", "object"]\n', r"corpus\.jsonl:1: a line must hold a JSON object"),
    ("qrels/test.tsv", "q1\td1\n", r"test\.tsv:1: expected 'query-id corpus-id score'"),
    ("qrels/test.tsv", "q1\td1\thigh\n", r"test\.tsv:1: the score 'high' is not an integer"),
    ("qrels/test.tsv", "query-id\tcorpus-id\tscore\n", r"test\.tsv: no judgments"),
])
def test_malformed_lines_name_file_and_line(tiny: Path, name: str, content: str, message: str) -> None:
    (tiny / name).write_text(content)
    with pytest.raises(BeirFormatError, match=message):
        load_beir(tiny, "test")


def test_four_column_trec_qrels_are_accepted(tiny: Path) -> None:
    (tiny / "qrels" / "test.tsv").write_text("q1 0 d1 1\nq1 0 d3 0\n")
    assert load_beir(tiny, "test").qrels == {"q1": {"d1": 1, "d3": 0}}


def test_judged_ids_missing_from_the_corpus_are_listed_not_fatal(tiny: Path) -> None:
    with (tiny / "qrels" / "test.tsv").open("a") as fh:
        fh.write("q3\tghost\t1\n")
    assert load_beir(tiny, "test").unknown_docs == ["ghost"]
