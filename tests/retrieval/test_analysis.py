"""BM25 text analysis: tokens, stopwords and Snowball stems, the same on both sides."""

from __future__ import annotations

import pytest

from newsrag.core.errors import ConfigError
from newsrag.store.analysis import bm25_terms

pytestmark = pytest.mark.unit


def test_words_are_lowercased_stopwords_dropped_and_stemmed() -> None:
    assert bm25_terms("The bridge REOPENED on Monday, after repairs.") == "bridg reopen monday after repair"


def test_inflections_meet_at_one_stem() -> None:
    assert bm25_terms("inhibits") == bm25_terms("inhibition") == bm25_terms("inhibited") == "inhibit"
    assert bm25_terms("closures closing") == "closur close"  # Snowball is conservative, not a lemmatiser


def test_other_languages_and_no_stemming() -> None:
    assert bm25_terms("Die Brücken wurden geschlossen", "german") == "die bruck wurd geschloss"
    assert bm25_terms("The Bridges", "none") == "bridges"


def test_an_unknown_stemmer_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="NEWSRAG_BM25_STEMMER: unknown stemmer 'klingon'"):
        bm25_terms("anything", "klingon")


def test_punctuation_and_empty_text() -> None:
    assert bm25_terms("") == ""
    assert bm25_terms("!!! --- ...") == ""
    assert bm25_terms("COVID-19 cases rose 3.5%") == "covid 19 case rose 3 5"
