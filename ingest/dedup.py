"""Near-duplicate detection for syndicated copies of one story (MinHash + LSH, from datasketch).

Signatures are word 5-shingles of the normalized text. LSH finds candidates cheaply; a candidate
counts only when its estimated Jaccard similarity reaches the threshold. The default 0.5 was measured
on the example corpus: a wire story republished with a new lede sentence and a credit line scores
0.69 on 5-shingles, while every pair of distinct stories scores at most 0.02. Short edits move
5-shingle Jaccard a lot (each changed word touches five shingles), hence the low threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from datasketch import MinHash, MinHashLSH

from newsrag.ingest.models import normalize_text

NUM_PERM = 128
SCHEME = "affine32"  # datasketch 2's default; stored signatures are only comparable within one scheme
SHINGLE = 5
MIN_WORDS = 30  # shorter texts (briefs, headlines) are too generic to call duplicates


@dataclass(frozen=True)
class Original:
    doc_id: str
    source_id: str
    url: str
    similarity: float


def signature(text: str) -> MinHash | None:
    words = re.findall(r"\w+", normalize_text(text).lower())
    if len(words) < MIN_WORDS:
        return None
    shingles = {" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}
    m = MinHash(num_perm=NUM_PERM, scheme=SCHEME)
    m.update_batch([s.encode("utf-8") for s in shingles])
    return m


class NearDuplicateIndex:
    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._meta: dict[str, tuple[str, str, MinHash]] = {}

    def __len__(self) -> int:
        return len(self._meta)

    def add(self, doc_id: str, source_id: str, url: str, minhash: MinHash) -> None:
        self.remove(doc_id)
        self._lsh.insert(doc_id, minhash)
        self._meta[doc_id] = (source_id, url, minhash)

    def add_hashvalues(self, doc_id: str, source_id: str, url: str, values: npt.NDArray[np.uint64]) -> None:
        self.add(doc_id, source_id, url, MinHash(num_perm=NUM_PERM, hashvalues=values, scheme=SCHEME))

    def sources(self) -> dict[str, str]:
        """doc id -> source id of every signature held."""
        return {doc_id: meta[0] for doc_id, meta in self._meta.items()}

    def remove(self, doc_id: str) -> None:
        if doc_id in self._meta:
            self._lsh.remove(doc_id)
            del self._meta[doc_id]

    def find(self, doc_id: str, minhash: MinHash) -> Original | None:
        """The most similar other document at or above the threshold, if any."""
        best: Original | None = None
        for other in self._lsh.query(minhash):
            if other == doc_id:
                continue
            source_id, url, theirs = self._meta[other]
            sim = float(minhash.jaccard(theirs))
            if sim >= self.threshold and (best is None or sim > best.similarity):
                best = Original(other, source_id, url, sim)
        return best
