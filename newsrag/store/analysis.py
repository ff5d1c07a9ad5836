"""Text analysis for BM25: lower-case word tokens, stopwords out, Snowball stems.

Weaviate's ``word`` tokenization does not stem, so "inhibits" never matches "inhibition" and
"closed" never matches "closure". newsrag stems on its side instead: ingestion stores each chunk's
BM25 context already analysed (:func:`bm25_terms`), and search analyses the query the same way
before BM25 sees it. Both sides must use the same stemmer (``NEWSRAG_BM25_STEMMER``); changing it
means re-ingesting. Snowball (``snowballstemmer``, with the PyStemmer C speed-up) is the stemmer
family Lucene and Elasticsearch ship.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError

_WORD = re.compile(r"\w+", re.UNICODE)
# Lucene's English stopword set (the one Weaviate's "en" preset is built on).
STOPWORDS = frozenset(["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"])


class AnalysisSettings(BaseSettings):
    """``NEWSRAG_BM25_STEMMER``: a Snowball language (``english``, ``german``, ...) or ``none``."""

    model_config = SettingsConfigDict(env_prefix="NEWSRAG_BM25_", extra="ignore")

    stemmer: str = "english"


@lru_cache(maxsize=16)
def _stemmer(language: str) -> Any:
    if language == "none":
        return None
    import snowballstemmer

    if language not in snowballstemmer.algorithms():
        raise ConfigError(f"NEWSRAG_BM25_STEMMER: unknown stemmer {language!r}; choose none or one of "
                          f"{', '.join(sorted(snowballstemmer.algorithms()))}")
    return snowballstemmer.stemmer(language)


def bm25_terms(text: str, stemmer: str = "english") -> str:
    """``text`` as the space-separated terms BM25 indexes: "The bridge REOPENED on Monday" ->
    "bridg reopen monday"."""
    words = [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]
    algorithm = _stemmer(stemmer)
    return " ".join(algorithm.stemWords(words) if algorithm is not None else words)
