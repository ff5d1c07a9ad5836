"""Token-aware chunking with langchain-text-splitters and the embedding model's own tokenizer.

Splitting by characters leaves many chunks over MiniLM's 256-token window, which the model then
silently truncates; splitting by the model's tokens keeps every chunk whole. The title is embedded
with each chunk (see :func:`embedding_text`), so the default budget leaves room for it.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingest.models import Article, Chunk
from retrieval.analysis import bm25_terms

SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]
MIN_WORDS = 6
BOILERPLATE = re.compile(
    r"^(advertisement|subscribe( now)?|sign up for our newsletter.*|all rights reserved.*|"
    r"copyright ©?.*|click here.*|read more:?.*|share this( article)?|follow us on .*|related( stories)?:?)$",
    re.IGNORECASE,
)


class Chunker:
    def __init__(self, tokenizer: Any, chunk_tokens: int = 200, overlap_tokens: int = 30,
                 context_chunks: int = 1, stemmer: str = "english") -> None:
        if overlap_tokens >= chunk_tokens:
            raise ValueError("overlap_tokens must be smaller than chunk_tokens")
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.context_chunks = context_chunks  # neighbours on each side in a chunk's BM25 context
        self.stemmer = stemmer
        # The splitter measures whole articles in tokens; the model's 256-token limit applies to
        # chunks, not to this count, so the "sequence longer than max" warning is only noise.
        from transformers.utils import logging as hf_logging

        hf_logging.get_logger("transformers.tokenization_utils_base").setLevel(hf_logging.ERROR)
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer, chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, separators=SEPARATORS,
            keep_separator="end", strip_whitespace=True,
        )

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def split(self, article: Article) -> list[Chunk]:
        """Chunks of the article body; empty and boilerplate pieces are dropped."""
        pieces = [p for p in self._splitter.split_text(article.text) if is_content(p)]
        hash_ = article.content_hash
        terms = [bm25_terms(p, self.stemmer) for p in pieces]  # each piece analysed once, shared by neighbours
        return [
            Chunk(doc_id=article.doc_id, chunk_index=i, text=p, token_count=self.count_tokens(p), content_hash=hash_,
                  context=neighbourhood(terms, i, self.context_chunks))
            for i, p in enumerate(pieces)
        ]


def neighbourhood(pieces: list[str], index: int, width: int) -> str:
    """Piece ``index`` with up to ``width`` pieces before and after it, in reading order."""
    return "\n\n".join(pieces[max(0, index - width): index + width + 1])


def is_content(piece: str) -> bool:
    text = piece.strip()
    return len(text.split()) >= MIN_WORDS and not BOILERPLATE.match(text)


def embedding_text(title: str, chunk_text: str) -> str:
    """What gets embedded: the title gives every chunk its article's subject."""
    return f"{title}\n\n{chunk_text}" if title else chunk_text
