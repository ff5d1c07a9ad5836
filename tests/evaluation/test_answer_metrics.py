"""Offline answer metrics on hand-made answers with hand-counted support and F1."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from newsrag.evaluation.answer_metrics import (
    MetricResult,
    abstention_correct,
    abstention_summary,
    answer_relevance_offline,
    citation_precision_offline,
    content_words,
    contexts_by_marker,
    correctness_offline,
    faithfulness_offline,
    latency,
    split_sentences,
    stem,
    summarize_results,
)
from newsrag.retrieval.answer import Answer, AnswerCitation

pytestmark = pytest.mark.unit

CTX = {
    1: "The Port Calder council voted 7-4 late Tuesday to approve the Harbor Line light rail.",
    2: "The 11.6-kilometer line will have 14 stations and open in 2031.",
}


def citation(n: int, chunk_id: str, quote: str) -> AnswerCitation:
    return AnswerCitation(n=n, chunk_id=chunk_id, doc_id=f"doc-{chunk_id}", url=f"https://x.example/{chunk_id}",
                          title="t", quote=quote)


# -- text rules --------------------------------------------------------------------------------


def test_stemming_and_content_words() -> None:
    assert {stem(w) for w in ("vote", "votes", "voted", "voting")} == {"vot"}
    assert stem("stations") == "station" and stem("uses") == "use" and stem("1990s") == "1990s"
    # stopwords and question words go; numbers stay whole
    assert content_words("How many stations will the line have? It passed 7-4.") == \
        {"station", "lin", "pass", "7-4"}  # final e dropped: line/lines/lined -> lin


def test_sentences_keep_their_markers() -> None:
    text = "The council voted 7-4. [1] Dr. Smith said it has 14 stations [2]. It opens in 2031.[1][2]\nDone"
    assert split_sentences(text) == [
        ("The council voted 7-4.", [1]),
        ("Dr. Smith said it has 14 stations.", [2]),
        ("It opens in 2031.", [1, 2]),
        ("Done", []),
    ]


# -- faithfulness ------------------------------------------------------------------------------


def test_faithfulness_counts_supported_sentences() -> None:
    answer = ("The council approved the Harbor Line by a 7-4 vote [1]. "
              "The line will have 14 stations [2]. It will cost 3 billion dollars [2].")
    # content words are stemmed (approved -> approv, vote -> vot, line -> lin):
    # 1: {council, approv, harbor, lin, 7-4, vot} all in [1]             -> 6/6 supported
    # 2: {lin, 14, station} all in [2]                                   -> 3/3 supported
    # 3: {cost, 3, billion, dollar} none in [2]                          -> 0/4 not supported
    result = faithfulness_offline(answer, CTX)
    assert result.value == pytest.approx(2 / 3)
    assert result.method == "offline:faithfulness"
    assert [r["supported"] for r in result.details["per_sentence"]] == [True, True, False]
    assert result.details["supported"] == 2 and result.details["sentences"] == 3


def test_faithfulness_threshold_is_sixty_percent_inclusive() -> None:
    # {council, approv, rail, protest, merchant}: 3 of 5 in [1] = 0.6 -> supported
    # {council, approv, protest, angry, merchant}: 2 of 5 = 0.4 -> not supported
    assert faithfulness_offline("Council approved rail after protests from merchants [1].", CTX).value == 1.0
    assert faithfulness_offline("Council approved protests from angry merchants [1].", CTX).value == 0.0


def test_faithfulness_uses_what_each_sentence_cites() -> None:
    # cites nothing: any context may support it -> supported by [2]
    assert faithfulness_offline("The line will have 14 stations.", CTX).value == 1.0
    # cites the wrong block: {lin, 14, station} vs [1] -> only "lin", 1/3 -> unsupported
    assert faithfulness_offline("The line will have 14 stations [1].", CTX).value == 0.0
    # cites a marker that is not in the contexts: no text, unsupported, reported
    result = faithfulness_offline("The line will have 14 stations [9].", CTX)
    assert result.value == 0.0 and result.details["per_sentence"][0]["unknown_markers"] == [9]


def test_faithfulness_not_applicable() -> None:
    assert faithfulness_offline("", CTX).value is None
    assert faithfulness_offline("  [1] ", CTX).details["reason"] == "empty answer"
    abstained = faithfulness_offline("The sources do not say.", CTX, abstained=True)
    assert abstained.value is None and abstained.details["reason"] == "abstained"


def test_contexts_by_marker_joins_the_cited_chunks() -> None:
    cites = [citation(1, "a", "q"), citation(1, "b", "q"), citation(2, "c", "q"), {"n": 3, "chunk_id": "zz"}]
    assert contexts_by_marker(cites, {"a": "A text", "b": "B text", "c": "C text"}) == \
        {1: "A text\nB text", 2: "C text"}


# -- relevance ---------------------------------------------------------------------------------


def test_relevance_by_word_overlap() -> None:
    # Q = {station, harbor, lin, light, rail}; A = {harbor, lin, 14, station} -> 3/5
    result = answer_relevance_offline("How many stations will the Harbor Line light rail have?",
                                      "The Harbor Line will have 14 stations [2].")
    assert result.value == pytest.approx(0.6)
    assert result.details["matched"] == ["harbor", "lin", "station"]


def test_relevance_by_embeddings() -> None:
    vectors = {"q": [1.0, 0.0], "yes": [0.6, 0.8], "no": [-1.0, 0.0]}

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.array([vectors[t] for t in texts])

    assert answer_relevance_offline("q", "yes", embed=embed).value == pytest.approx(0.6)  # cos = 0.6
    opposite = answer_relevance_offline("q", "no", embed=embed)
    assert opposite.value == 0.0 and opposite.details["cosine"] == pytest.approx(-1.0)


def test_relevance_not_applicable() -> None:
    assert answer_relevance_offline("Who won?", "x", abstained=True).value is None
    assert answer_relevance_offline("Who won?", "").value is None
    assert answer_relevance_offline("Who is it?", "Someone.").details["reason"] == "question has no content words"


# -- correctness -------------------------------------------------------------------------------


def test_correctness_token_f1() -> None:
    # answer -> [line, passed, 74] (markers, punctuation and "the" removed); reference -> [it, passed, 74]
    # common 2: P = 2/3, R = 2/3, F1 = 2/3
    result = correctness_offline("The line passed 7-4 [1].", "It passed 7-4.")
    assert result.value == pytest.approx(2 / 3)
    assert result.details["contains_reference_numbers"] is True  # 7 and 4; the marker's 1 is ignored


def test_correctness_partial_and_missing_numbers() -> None:
    # answer [14, stations, along, line]; reference [14, stations, along, 116kilometer, line] ("an" removed)
    # common 4: P = 4/4, R = 4/5, F1 = 2 * 1 * 0.8 / 1.8 = 0.8889
    result = correctness_offline("14 stations along the line", "14 stations along an 11.6-kilometer line.")
    assert result.value == pytest.approx(2 * 0.8 / 1.8)
    assert result.details["reference_numbers"] == ["14", "11.6"]
    assert result.details["missing_numbers"] == ["11.6"]
    assert result.details["contains_reference_numbers"] is False


def test_correctness_edges() -> None:
    assert correctness_offline("anything", None).value is None
    assert correctness_offline("anything", "  ").details["reason"] == "no reference"
    assert correctness_offline("Sunny.", "It was sunny.").details["contains_reference_numbers"] is None
    assert correctness_offline("Cats sleep.", "Dogs bark.").value == 0.0
    abstained = correctness_offline("The sources do not say.", "It passed 7-4.", abstained=True)
    assert abstained.value == 0.0 and abstained.details["reason"] == "abstained"


# -- citations ---------------------------------------------------------------------------------


def test_citation_precision() -> None:
    chunks = {"c1": "Officials said.  The Council voted 7-4\nlate Tuesday. Then they left.",
              "c2": "The line will have 14 stations."}
    cites = [citation(1, "c1", "The council voted 7-4 late Tuesday."),  # valid (whitespace, case)
             citation(2, "c2", "The line will have 20 stations."),  # not in its chunk
             citation(3, "c3", "Anything.")]  # chunk text unknown
    result = citation_precision_offline(cites, chunks, gold_spans=["voted 7-4 late tuesday"])
    assert result.value == pytest.approx(1 / 3)
    assert result.details["valid"] == 1 and result.details["missing_context"] == ["c3"]
    assert result.details["with_gold_span"] == 1
    assert "with_gold_span" not in citation_precision_offline(cites, chunks).details


def test_citation_precision_without_citations() -> None:
    assert citation_precision_offline([], {}, abstained=True).value is None
    assert citation_precision_offline([], {}).value == 0.0  # answered, cited nothing


# -- abstention, aggregates, latency -----------------------------------------------------------


def test_abstention() -> None:
    assert abstention_correct(abstained=True, answerable=False)
    assert abstention_correct(abstained=False, answerable=True)
    assert not abstention_correct(abstained=True, answerable=True)
    assert not abstention_correct(abstained=False, answerable=False)
    # (abstained, answerable): 1 right answer, 1 false abstention, 1 right abstention, 1 missed
    summary = abstention_summary([(False, True), (True, True), (True, False), (False, False)])
    assert summary == {"n": 4, "accuracy": 0.5, "false_abstentions": 1, "missed_abstentions": 1,
                       "false_abstention_rate": 0.5, "missed_abstention_rate": 0.5}
    assert abstention_summary([])["accuracy"] is None


def test_summarize_results_and_latency() -> None:
    results = [MetricResult(name="f", value=1.0, method="offline:f"),
               MetricResult(name="f", value=None, method="offline:f"),
               MetricResult(name="f", value=0.5, method="offline:f"),
               MetricResult(name="g", value=0.0, method="offline:g")]
    summary = summarize_results(results)
    assert (summary["f"].mean, summary["f"].n, summary["f"].n_undefined) == (0.75, 2, 1)
    assert summary["g"].mean == 0.0
    answer = Answer(text="x", prompt_name="p", prompt_version="1", generator="g", model="m",
                    trace_id="t", timings={"search": 3.0, "total": 12.5})
    assert latency(answer) == 12.5
    assert latency(answer.model_dump(mode="json")) == 12.5
    assert latency({"timings": {}}) is None
