"""Token-aware chunking with langchain-text-splitters and the embedding model's own tokenizer.

Splitting by characters leaves many chunks over MiniLM's 256-token window, which the model then
silently truncates; splitting by the model's tokens keeps every chunk whole. The title is embedded
with each chunk (see :func:`embedding_text`), so the default budget leaves room for it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from langchain_text_splitters import RecursiveCharacterTextSplitter

from newsrag.ingest.models import Article, Chunk
from newsrag.store.analysis import bm25_terms

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
        self.chunk_tokens = chunk_tokens
        self.context_chunks = context_chunks  # neighbours on each side in a chunk's BM25 context
        self.stemmer = stemmer
        # The model's fast (Rust) tokenizer, without the bundled fixed padding to 128 or truncation,
        # measures pieces; the splitter measures most pieces twice, so lengths are memoised per article.
        backend = copy.deepcopy(tokenizer.backend_tokenizer)
        backend.no_padding()
        backend.no_truncation()
        self._backend = backend
        self._lengths: dict[str, int] = {}
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_tokens, chunk_overlap=overlap_tokens, separators=SEPARATORS,
            keep_separator="end", strip_whitespace=True, length_function=self.count_tokens,
        )

    def count_tokens(self, text: str) -> int:
        count = self._lengths.get(text)
        if count is None:
            count = self._lengths[text] = len(self._backend.encode(text, add_special_tokens=False))
        return count

    def split(self, article: Article) -> list[Chunk]:
        """Chunks of the article body; empty and boilerplate pieces are dropped."""
        try:
            pieces = [p for p in self._splitter.split_text(article.text) if is_content(p)]
            counts = [self.count_tokens(p) for p in pieces]
        finally:
            self._lengths.clear()  # bounded by one article
        hash_ = article.content_hash
        terms = [bm25_terms(p, self.stemmer) for p in pieces]  # each piece analysed once, shared by neighbours
        return [
            Chunk(doc_id=article.doc_id, chunk_index=i, text=p, token_count=counts[i], content_hash=hash_,
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
