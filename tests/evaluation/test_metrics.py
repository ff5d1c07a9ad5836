"""Retrieval metrics on hand-computed examples, and chunk/document relevance."""

from __future__ import annotations

import math
from typing import Any

import pytest

from newsrag.core.records import ChunkRecord, Hit
from newsrag.evaluation.metrics import (
    doc_ranking,
    doc_relevance,
    hit_at_k,
    mrr,
    ndcg_at_k,
    normalize_span,
    precision_at_k,
    recall_at_k,
    relevant_chunks,
    strip_markers,
    summarize,
    url_matches,
)

pytestmark = pytest.mark.unit

ALL = (hit_at_k, recall_at_k, precision_at_k, mrr, ndcg_at_k)


def hit(uuid: str, **props: Any) -> Hit:
    return Hit(uuid=uuid, score=1.0, chunk=ChunkRecord(**props))


# -- hand-computed values ----------------------------------------------------------------------


def test_hit_at_k() -> None:
    ranked = ["x", "y", "a"]
    assert hit_at_k(ranked, {"a"}, 2) == 0.0  # a is at rank 3
    assert hit_at_k(ranked, {"a"}, 3) == 1.0


def test_recall_at_k() -> None:
    ranked = ["a", "b", "c", "d"]
    relevant = {"a", "c", "e"}
    assert recall_at_k(ranked, relevant, 1) == pytest.approx(1 / 3)  # a
    assert recall_at_k(ranked, relevant, 2) == pytest.approx(1 / 3)  # a (b is not relevant)
    assert recall_at_k(ranked, relevant, 3) == pytest.approx(2 / 3)  # a, c; e never retrieved
    assert recall_at_k(ranked, relevant, 10) == pytest.approx(2 / 3)  # k > len: still 2 of 3


def test_precision_at_k_divides_by_k() -> None:
    ranked = ["a", "b", "c", "d"]
    relevant = {"a", "c"}
    assert precision_at_k(ranked, relevant, 1) == 1.0  # 1/1
    assert precision_at_k(ranked, relevant, 2) == 0.5  # 1/2
    assert precision_at_k(ranked, relevant, 4) == 0.5  # 2/4
    assert precision_at_k(ranked, relevant, 10) == pytest.approx(0.2)  # 2/10: empty slots are misses


def test_mrr() -> None:
    ranked = ["x", "y", "a", "b"]
    assert mrr(ranked, {"a", "b"}) == pytest.approx(1 / 3)  # first relevant at rank 3
    assert mrr(ranked, {"a"}, k=2) == 0.0  # not in the top 2
    assert mrr(ranked, {"a"}, k=3) == pytest.approx(1 / 3)
    assert mrr(["a"], {"a"}) == 1.0


def test_ndcg_binary() -> None:
    # ranks [rel, not, rel], 2 relevant: DCG = 1/log2(2) + 0 + 1/log2(4) = 1.5
    # IDCG = 1/log2(2) + 1/log2(3) = 1.63093 -> 1.5 / 1.63093 = 0.91972
    value = ndcg_at_k(["a", "x", "b"], {"a", "b"}, 3)
    assert value == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert value == pytest.approx(0.91972, abs=1e-5)


def test_ndcg_graded() -> None:
    # gains a=3, b=1, c=0 (not relevant); ranked b, a, c
    # DCG@3 = 1/log2(2) + 3/log2(3) + 0 = 1 + 1.89279 = 2.89279
    # IDCG@3 = 3/log2(2) + 1/log2(3) = 3 + 0.63093 = 3.63093 -> 0.79671
    value = ndcg_at_k(["b", "a", "c"], {"a": 3, "b": 1, "c": 0}, 3)
    assert value == pytest.approx((1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3)))
    assert value == pytest.approx(0.79671, abs=1e-5)
    # @1: DCG = 1, IDCG = 3 -> 1/3
    assert ndcg_at_k(["b", "a", "c"], {"a": 3, "b": 1}, 1) == pytest.approx(1 / 3)


def test_ndcg_k_larger_than_the_list() -> None:
    # one relevant found at rank 1 of a 1-item list, 2 relevant: 1 / (1 + 1/log2(3)) = 0.61315
    assert ndcg_at_k(["a"], {"a", "b"}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))


# -- edge cases --------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.__name__)
def test_no_gold_is_none(metric: Any) -> None:
    assert metric(["a", "b"], set(), 2) is None
    assert metric(["a", "b"], {"a": 0, "b": 0.0}, 2) is None  # zero gains are not relevant


@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.__name__)
def test_all_gold_is_one(metric: Any) -> None:
    assert metric(["a", "b"], {"a", "b"}, 2) == 1.0


@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.__name__)
def test_empty_retrieval_is_zero(metric: Any) -> None:
    assert metric([], {"a"}, 5) == 0.0


@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.__name__)
def test_k_must_be_positive(metric: Any) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        metric(["a"], {"a"}, 0)


def test_duplicates_count_once_but_keep_their_rank() -> None:
    ranked = ["a", "a", "b"]
    relevant = {"a", "b"}
    assert precision_at_k(ranked, relevant, 2) == 0.5  # the second "a" is not a new find
    assert recall_at_k(ranked, relevant, 2) == 0.5
    # [rel, dup, rel]: (1 + 0 + 1/log2(4)) / (1 + 1/log2(3)) = 0.91972
    assert ndcg_at_k(ranked, relevant, 3) == pytest.approx(0.91972, abs=1e-5)


def test_ties_keep_the_given_order() -> None:
    # equal scores are not re-sorted: the list order is the ranking
    assert mrr(["b", "a"], {"a"}) == 0.5
    assert mrr(["a", "b"], {"a"}) == 1.0


def test_summarize_leaves_undefined_out() -> None:
    s = summarize([1.0, None, 0.0, None])
    assert (s.mean, s.n, s.n_undefined) == (0.5, 2, 2)
    assert summarize(v for v in [None]).mean is None
    assert summarize(iter([0.25, 0.75])).mean == 0.5


# -- chunks and documents ----------------------------------------------------------------------


def test_span_matches_across_whitespace_case_and_quotes() -> None:
    hits = [
        hit("c1", url="https://x.example/a", doc_id="A",
            text="The council   Voted 7-4\nlate Tuesday to approve it. \u201cWe\u2019re ready,\u201d she said."),
        hit("c2", url="https://x.example/b", doc_id="B", text="Nothing relevant here."),
    ]
    assert relevant_chunks(hits, gold_spans=["voted 7-4 late  tuesday"]) == [True, False]
    assert relevant_chunks(hits, gold_spans=['"We\'re ready," she said']) == [True, False]
    assert relevant_chunks(hits, gold_spans=["voted 7-5"]) == [False, False]
    assert normalize_span("  A\u00a0 B\n") == "a b"


def test_url_and_doc_id_match() -> None:
    hits = [
        hit("c1", url="https://Metro-Daily.example/2026/x.html#top", doc_id="d1", text=""),
        hit("c2", url="https://metro-daily.example/2026/y.html", doc_id="d2", text=""),
        hit("c3", url="file:///work/examples/news/notes/harbor-line-timeline.md", doc_id="d3", text=""),
        hit("c4", url="file:///work/other-notes/harbor-line-timeline.md", doc_id="d4", text=""),
    ]
    assert relevant_chunks(hits, gold_urls=["https://metro-daily.example/2026/x.html/"]) == \
        [True, False, False, False]
    assert relevant_chunks(hits, gold_doc_ids=["d2"]) == [False, True, False, False]
    # a gold path relative to the corpus matches the file url ending in /<path>, not a lookalike
    assert relevant_chunks(hits, gold_urls=["notes/harbor-line-timeline.md"]) == [False, False, True, False]
    assert relevant_chunks(hits) == [False] * 4  # no gold: nothing is relevant
    assert not url_matches("", "x") and not url_matches("https://a.example/x", "https://a.example/y")


def test_doc_ranking_uses_each_documents_best_chunk() -> None:
    hits = [hit("c1", doc_id="A"), hit("c2", doc_id="B"), hit("c3", doc_id="A"),
            hit("c4", url="https://u.example/"), hit("c5")]
    # A at rank 1 (its best chunk), B at 2, a chunk without doc_id falls back to url, then uuid
    assert doc_ranking(hits) == ["A", "B", "https://u.example/", "c5"]
    assert doc_ranking([]) == []


def test_doc_relevance_counts_missed_gold_documents() -> None:
    hits = [hit("c1", doc_id="B", url="https://x.example/b", text="b"),
            hit("c2", doc_id="A", url="https://x.example/a", text="a"),
            hit("c3", doc_id="A", url="https://x.example/a", text="a2"),
            hit("c4", doc_id="C", url="https://x.example/c", text="It rained 142 millimeters.")]
    ranking, relevant = doc_relevance(hits, gold_urls=["https://x.example/a", "https://x.example/z"])
    assert ranking == ["B", "A", "C"]
    assert relevant == {"A", "gold:https://x.example/z"}
    assert recall_at_k(ranking, relevant, 3) == 0.5  # found A, missed z
    assert mrr(ranking, relevant) == 0.5  # A at rank 2
    # span-only gold: the document holding the span
    ranking, relevant = doc_relevance(hits, gold_spans=["rained 142  millimeters"])
    assert relevant == {"C"} and mrr(ranking, relevant) == pytest.approx(1 / 3)
    # no gold: nothing relevant, every metric undefined
    ranking, relevant = doc_relevance(hits)
    assert relevant == set() and ndcg_at_k(ranking, relevant, 3) is None


def test_strip_markers() -> None:
    assert strip_markers("It passed 7-4 [1]. More [2][3]") == "It passed 7-4. More"
