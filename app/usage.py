"""Token counts for the OpenAI ``usage`` field.

No generator reports its provider's usage (``newsrag.retrieval.generators`` return text and citations only),
so the app counts: with the embedder's own tokenizer when it has one (the local MiniLM's WordPiece, the
tokenizer the chunker splits with), else with the chars/4 estimate OpenAI gives for English.
``prompt_tokens`` counts the question as asked, ``completion_tokens`` the answer text. These are
not an LLM provider's billed tokens (its prompt also holds the retrieved articles); the response says
how they were counted in ``newsrag.usage_counted_by``.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from newsrag.providers.governor import estimate_tokens

log = logging.getLogger("newsrag.app")

ESTIMATE = "estimate:chars/4"


class TokenCounter:
    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self._backend: Any = None
        self._lock = threading.Lock()
        self._counted_by = ESTIMATE
        self._loaded = False

    @property
    def counted_by(self) -> str:
        """How :meth:`count` counts: ``tokenizer:<embedding model id>`` or ``estimate:chars/4``."""
        self._tokenizer()
        return self._counted_by

    def count(self, text: str) -> int:
        if not text:
            return 0
        backend = self._tokenizer()
        if backend is None:
            return estimate_tokens(text)
        with self._lock:  # one Rust tokenizer shared by the worker threads
            return len(backend.encode(text, add_special_tokens=False))

    def usage(self, question: str, answer: str) -> dict[str, int]:
        prompt, completion = self.count(question), self.count(answer)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _tokenizer(self) -> Any:
        """The embedder's fast tokenizer without padding or truncation, loaded once; None without one."""
        with self._lock:
            if not self._loaded:
                self._backend = _backend_of(self._embedder)
                if self._backend is not None:
                    self._counted_by = f"tokenizer:{getattr(self._embedder, 'model_id', '?')}"
                self._loaded = True
        return self._backend


def _backend_of(embedder: Any) -> Any:
    try:
        tokenizer = getattr(embedder, "tokenizer", None)
        backend = copy.deepcopy(tokenizer.backend_tokenizer) if tokenizer is not None else None
    except Exception:
        log.warning("the embedder's tokenizer is not usable; usage is estimated (chars/4)", exc_info=True)
        return None
    if backend is not None:
        backend.no_padding()
        backend.no_truncation()
    return backend
