"""The extractive generator, offline: sentence splitting, support scoring, citations, abstention.

A bag-of-words hashing embedder stands in for the model, so cosine here is lexical similarity."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np
import pytest

from newsrag.core.errors import ConfigError
from newsrag.retrieval.context import ContextBlock, ContextPart
from newsrag.retrieval.generators import available, create_generator, final_of
from newsrag.retrieval.generators.extractive import (
    ABSTAIN_TEXT,
    ExtractiveGenerator,
    ExtractiveSettings,
    Scored,
    clause_windows,
    content_words,
    split_sentences,
)

pytestmark = pytest.mark.unit


class BagOfWordsEmbedder:
    """Deterministic, offline: each content word hashes to one of 256 dimensions."""

    model_id = "fake/bow-256"
    dimensions = 256

    def __init__(self) -> None:
        self.calls = 0

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in content_words(text):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]

    def close(self) -> None:
        pass


def block(n: int, doc: str, text: str, title: str = "", score: float = 0.9) -> ContextBlock:
    chunk_id = f"{doc}-c0"
    return ContextBlock(n=n, doc_id=doc, url=f"https://news.test/{doc}", title=title or doc, published_at=None,
                        source_id="src", text=text, chunk_ids=(chunk_id,), score=score,
                        parts=(ContextPart(chunk_id, 0, text, score),))


HOSPITAL = block(1, "hospital", "St. Brigid's Eastfield Hospital opened on Wednesday. The hospital has 212 inpatient "
                 "beds and a 48-bay emergency department. Dr. Anand Varma said staffing was complete.",
                 "St. Brigid's Eastfield Hospital opens")
HELION = block(2, "helion", "Helion Semiconductors reported third-quarter revenue of $4.87 billion. Shares rose "
               "2.1 percent in late trading. The company expects fourth-quarter revenue of up to $5.3 billion.",
               "Helion Semiconductors beats forecasts", score=0.5)


@pytest.fixture
def generator() -> ExtractiveGenerator:
    return ExtractiveGenerator(BagOfWordsEmbedder(), ExtractiveSettings(min_support=0.3))


# -- sentences ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("Dr. Amina Okoye said it works. It did.", ["Dr. Amina Okoye said it works.", "It did."]),
    ("U.S. officials met. Talks ended.", ["U.S. officials met.", "Talks ended."]),
    ("Growth was 2.1 percent. Prices rose 3.5%.", ["Growth was 2.1 percent.", "Prices rose 3.5%."]),
    ("St. Brigid's opened. It has 212 beds.", ["St. Brigid's opened.", "It has 212 beds."]),
    ("Talks with the U.S. Trade Office resumed.", ["Talks with the U.S. Trade Office resumed."]),
    ("Reporting by A. Writer and B. Editor.", ["Reporting by A. Writer and B. Editor."]),
    ("They struck at 6 a.m. Tuesday, he said. Ships waited.", ["They struck at 6 a.m. Tuesday, he said.",
                                                              "Ships waited."]),
    ('Doors opened at 10 a.m. "My grandfather worked here," she said.',
     ["Doors opened at 10 a.m.", '"My grandfather worked here," she said.']),
    ('"We won," she said. Is it over? Yes! 2,300 workers left.',
     ['"We won," she said.', "Is it over?", "Yes!", "2,300 workers left."]),
    ('He said: "It is done." Then he left.', ['He said: "It is done."', "Then he left."]),
    ("Acme Inc. Chief Lee spoke. Fine.", ["Acme Inc. Chief Lee spoke.", "Fine."]),
    ("It cost $1.42 billion. $560 million is sought.", ["It cost $1.42 billion.", "$560 million is sought."]),
    ("First line\nSecond line without stop\n…\nThird.", ["First line", "Second line without stop", "Third."]),
    ("lowercase after period. no split here.", ["lowercase after period. no split here."]),
    ("", []),
])
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_content_words_drop_stopwords_and_stem_lightly() -> None:
    assert content_words("How many satellites were launched by the companies?") == {"satellit", "launch", "company"}
    assert content_words("closed") == content_words("closing") == content_words("close")
    assert content_words("Who won?") == content_words("the winner will win") - {"winner"}


def test_clause_windows_only_for_sentences_with_several_clauses() -> None:
    long = ("The bill would require developers of large models to submit to audits before release, "
            "and to report serious safety incidents within 72 hours.")
    windows = clause_windows(long)
    assert any("report serious safety incidents within 72 hours" in w and len(w) < len(long) for w in windows)
    assert all(len(w.split()) >= 6 for w in windows)  # short pieces are merged, not scored alone
    assert clause_windows("Short and simple sentence here.") == []


# -- answers -----------------------------------------------------------------------------------

def test_cites_the_block_that_holds_the_answer(generator: ExtractiveGenerator) -> None:
    gen = generator.generate("What fourth-quarter revenue does Helion Semiconductors expect?", [HOSPITAL, HELION])
    assert not gen.abstained
    assert gen.citations[0].n == 2 and gen.citations[0].url == "https://news.test/helion"
    assert gen.citations[0].quote.startswith("The company expects fourth-quarter revenue")
    assert gen.text.startswith("The company expects fourth-quarter revenue of up to $5.3 billion. [2]")
    assert gen.generator == "extractive" and gen.model


def test_citations_refer_to_existing_blocks_and_markers_match(generator: ExtractiveGenerator) -> None:
    blocks = [HOSPITAL, HELION]
    gen = generator.generate("How many inpatient beds does St. Brigid's Eastfield Hospital have?", blocks)
    by_n = {b.n: b for b in blocks}
    assert gen.citations and 1 <= len(gen.citations) <= 3
    for c in gen.citations:
        assert c.n in by_n and c.chunk_id in by_n[c.n].chunk_ids and c.doc_id == by_n[c.n].doc_id
        assert c.quote in by_n[c.n].text and f"{c.quote} [{c.n}]" in gen.text
    assert sorted(int(m) for m in re.findall(r"\[(\d+)\]", gen.text)) == sorted(c.n for c in gen.citations)
    assert any("212 inpatient beds" in c.quote for c in gen.citations)


def test_selection_leads_with_the_answer_and_drops_sentences_adding_nothing() -> None:
    """Ordered by how well a sentence answers (support, focus words, answer type, the article's
    title and retrieval score), not grouped by article; a repeat, and a sentence adding no focus
    word unless its support is within ``keep_support`` of the best, are dropped (#20, item 9)."""
    gen = ExtractiveGenerator(BagOfWordsEmbedder(), ExtractiveSettings(relative_support=0.8, max_sentences=3,
                                                                       keep_support=0.95))
    other = block(2, "other", "Unrelated text.", title="Unrelated", score=0.9)

    def scored(b: ContextBlock, position: int, support: float, text: str) -> Scored:
        return Scored(b, b.chunk_ids[0], position, text, frozenset(content_words(text)), support, support, support)

    question = "How many inpatient beds does the hospital have?"
    pool = [scored(HOSPITAL, 0, 0.80, "The hospital opened on Wednesday after years of work."),
            scored(HOSPITAL, 3, 0.77, "The hospital has 212 inpatient beds."),
            scored(other, 1, 0.78, "Unrelated news about a hospital somewhere else."),
            scored(HOSPITAL, 4, 0.74, "The hospital has 212 inpatient beds indeed."),  # a repeat of one chosen
            scored(HOSPITAL, 5, 0.79, "Staff said the hospital opened on time."),  # within keep_support of best
            scored(other, 2, 0.50, "Below the support floor entirely.")]
    chosen = gen._select(question, pool, pool[0])
    assert [(c.block.n, c.position) for c in chosen] == [(1, 3), (1, 0), (1, 5)]
    concise = ExtractiveGenerator(BagOfWordsEmbedder(), ExtractiveSettings(relative_support=0.8, keep_support=1.5))
    assert [c.position for c in concise._select(question, pool, pool[0])] == [3]  # the rest add no focus word


def test_abstains_without_blocks(generator: ExtractiveGenerator) -> None:
    gen = generator.generate("Anything at all?", [])
    assert (gen.abstained, gen.text, gen.citations) == (True, ABSTAIN_TEXT, [])


def test_abstains_when_no_sentence_supports_the_question(generator: ExtractiveGenerator) -> None:
    gen = generator.generate("Who won the 2026 chess olympiad in Batumi?", [HOSPITAL, HELION])
    assert gen.abstained and gen.text == ABSTAIN_TEXT
    best = max(s.support for s in generator.score("Who won the 2026 chess olympiad in Batumi?", [HOSPITAL, HELION]))
    assert best < generator.settings.min_support


def test_abstains_when_the_best_retrieval_score_is_too_low() -> None:
    gen = ExtractiveGenerator(BagOfWordsEmbedder(), ExtractiveSettings(min_support=0.3, min_retrieval_score=0.95))
    assert gen.generate("How many inpatient beds does the hospital have?", [HOSPITAL, HELION]).abstained


def test_support_threshold_decides(generator: ExtractiveGenerator) -> None:
    question = "How many inpatient beds does St. Brigid's Eastfield Hospital have?"
    best = max(s.support for s in generator.score(question, [HOSPITAL]))
    strict = ExtractiveGenerator(BagOfWordsEmbedder(), ExtractiveSettings(min_support=best + 0.01))
    lenient = ExtractiveGenerator(BagOfWordsEmbedder(), ExtractiveSettings(min_support=best - 0.01))
    assert strict.generate(question, [HOSPITAL]).abstained
    assert not lenient.generate(question, [HOSPITAL]).abstained


def test_stream_yields_the_text_then_the_final_generation(generator: ExtractiveGenerator) -> None:
    question = "What fourth-quarter revenue does Helion Semiconductors expect?"
    events = list(generator.stream(question, [HOSPITAL, HELION]))
    assert all(e.final is None for e in events[:-1]) and events[-1].final is not None
    assert "".join(e.text for e in events) == events[-1].final.text
    assert final_of(iter(events)) == generator.generate(question, [HOSPITAL, HELION])


def test_sentence_vectors_are_cached_between_questions() -> None:
    embedder = BagOfWordsEmbedder()
    gen = ExtractiveGenerator(embedder, ExtractiveSettings())
    gen.score("How many beds?", [HOSPITAL])
    calls = embedder.calls
    gen.score("How many emergency bays?", [HOSPITAL])
    assert embedder.calls == calls + 1  # the question only


def test_registry_builds_the_extractive_generator() -> None:
    assert "extractive" in available()
    assert isinstance(create_generator("extractive", BagOfWordsEmbedder()), ExtractiveGenerator)
    with pytest.raises(ConfigError):
        create_generator("no-such-generator", BagOfWordsEmbedder())
