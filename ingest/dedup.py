"""Near-duplicate detection for syndicated copies of one story (MinHash + LSH, from datasketch),
held across concurrent workers by claims in the shared ingestion state.

Signatures are word 5-shingles of the normalized text. LSH finds candidates cheaply; a candidate
counts only when its estimated Jaccard similarity reaches the threshold. The default 0.5 was measured
on the example corpus: a wire story republished with a new lede sentence and a credit line scores
0.69 on 5-shingles, while every pair of distinct stories scores at most 0.02. Short edits move
5-shingle Jaccard a lot (each changed word touches five shingles), hence the low threshold.

**Claims.** The LSH bands of every stored (or being stored) document are rows of the state's
``doc_bands`` table, unique per (scope, band, key). A new article claims its signature and every
free band key in one transaction (``IngestState.claim``), then compares itself with the documents
holding its other keys: the most similar one at or above the threshold whose document the store
holds, or whose claim is live (a worker is writing it), is its original; the article is then
recorded as a copy of it, holds nothing, and is not stored. So two workers ingesting copies of one
story at the same moment agree on one winner: on SQLite the claims run one at a time (``BEGIN
IMMEDIATE``); on PostgreSQL the second insert of a shared band key waits for the first transaction
and then sees its row. A copy that loses while the winner is still writing has no chunks to name
itself on, so the winner names every copy recorded against it in its ``also_sources`` once its
chunks are written.

A claim lives while its run renews it (after every write group) and for :data:`CLAIM_LEASE`
after: a worker killed mid-run leaves claims that keep copies of those stories out until its retry
writes them, or until the lease runs out. A run releases the claims of articles it did not write;
their copies stay recorded and are named when the story is written. (Until then the story may be
missing: a copy's source is read again only when it changes.)
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Protocol

import numpy as np
import numpy.typing as npt
from datasketch import MinHash, MinHashLSH

from newsrag.ingest.models import normalize_text

NUM_PERM = 128
SCHEME = "affine32"  # datasketch 2's default; stored signatures are only comparable within one scheme
SHINGLE = 5
MIN_WORDS = 30  # shorter texts (briefs, headlines) are too generic to call duplicates
DEFAULT_THRESHOLD = 0.5
# Longer than one write group takes to embed and upsert (claims are renewed after each group), and
# short enough that a story whose worker died without a retry is not kept from its copies for long.
CLAIM_LEASE = timedelta(minutes=30)


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


def from_values(values: npt.NDArray[np.uint64]) -> MinHash:
    return MinHash(num_perm=NUM_PERM, hashvalues=values, scheme=SCHEME)


@dataclass(frozen=True)
class Banding:
    """An LSH layout: ``bands`` bands of ``rows`` hash values each, datasketch's choice for the
    threshold. The layout is part of every key, so keys cut for another threshold never match."""

    bands: int
    rows: int

    @classmethod
    def for_threshold(cls, threshold: float = DEFAULT_THRESHOLD) -> Banding:
        return _banding(threshold)

    @property
    def label(self) -> str:
        return f"{self.bands}x{self.rows}"

    def keys(self, values: npt.NDArray[np.uint64]) -> list[tuple[int, str]]:
        """(band, key) of each band of a signature's hash values, in band order."""
        v = np.asarray(values, dtype="<u8")  # one byte order on every host sharing the state
        return [(i, hashlib.blake2b(f"{self.label}:{i}:".encode() + v[i * self.rows:(i + 1) * self.rows].tobytes(),
                                    digest_size=16).hexdigest()) for i in range(self.bands)]


@dataclass(frozen=True)
class Holder:
    """A document holding band keys a claim wanted: its signature and how it holds them."""

    doc_id: str
    source_id: str
    url: str
    minhash: npt.NDArray[np.uint64]
    generation: str
    status: str  # claimed or stored
    claimed_at: str | None  # ISO time of the claim (renewed while its run writes)


Judge = Callable[[list[Holder]], tuple[Holder | None, list[Holder]]]
Signed = tuple[str, str, str, npt.NDArray[np.uint64]]  # doc id, source id, URL, hash values


class ClaimState(Protocol):
    """The shared state the claims live in (:class:`newsrag.ingest.state.IngestState`)."""

    generation: str

    def claim(self, doc_id: str, source_id: str, url: str, minhash: npt.NDArray[np.uint64], banding: Banding,
              claimant: str, judge: Judge) -> Holder | None: ...

    def store_signatures(self, docs: Sequence[Signed], banding: Banding, claimant: str) -> None: ...

    def band_signatures(self, banding: Banding) -> None: ...

    def copies(self, doc_ids: Sequence[str]) -> dict[str, set[str]]: ...

    def renew_claims(self, claimant: str) -> None: ...

    def release_claims(self, claimant: str) -> None: ...


@lru_cache(maxsize=8)
def _banding(threshold: float) -> Banding:
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    return Banding(lsh.b, lsh.r)


class NearDuplicateClaims:
    """One run's claims on the shared state (see the module doc). ``present(doc_id)`` asks the
    store whether it holds a document: the store is the truth, and a signature whose document is
    gone (retention, a manual delete) is released rather than trusted."""

    def __init__(self, state: ClaimState, threshold: float, present: Callable[[str], bool],
                 lease: timedelta = CLAIM_LEASE) -> None:
        self.state = state
        self.threshold = threshold
        self.present = present
        self.lease = lease
        self.claimant = uuid.uuid4().hex  # this run's mark on the claims it takes
        self.pending: set[str] = set()  # doc ids claimed and not yet stored

    @cached_property
    def banding(self) -> Banding:
        banding = Banding.for_threshold(self.threshold)
        self.state.band_signatures(banding)  # once: signatures saved without these bands get them
        return banding

    def claim(self, doc_id: str, source_id: str, url: str, minhash: MinHash) -> Original | None:
        """None: this article holds its story now (write it, then :meth:`stored`). Else the
        original it copies: the article is recorded as its copy and holds nothing."""
        similarity: dict[str, float] = {}

        def judge(holders: list[Holder]) -> tuple[Holder | None, list[Holder]]:
            ranked = sorted(((float(minhash.jaccard(from_values(h.minhash))), h) for h in holders),
                            key=lambda pair: -pair[0])
            stale: list[Holder] = []
            for sim, holder in ranked:
                if sim < self.threshold:
                    break
                if self._holds(holder):
                    similarity[holder.doc_id] = sim
                    return holder, stale
                stale.append(holder)
            return None, stale

        found = self.state.claim(doc_id, source_id, url, minhash.hashvalues, self.banding, self.claimant, judge)
        if found is None:
            self.pending.add(doc_id)
            return None
        return Original(found.doc_id, found.source_id, found.url, similarity[found.doc_id])

    def _holds(self, holder: Holder) -> bool:
        """Whether the holder's document is in the store, or on its way there (a live claim)."""
        if holder.generation != self.state.generation:
            return False
        live = holder.status == "claimed" and holder.claimed_at is not None and \
            datetime.now(UTC) - datetime.fromisoformat(holder.claimed_at) < self.lease
        return live or self.present(holder.doc_id)

    def stored(self, docs: Sequence[tuple[str, str, str, MinHash]]) -> dict[str, set[str]]:
        """Record written documents (doc id, source id, URL, signature) as stored: a claim of this
        run becomes a stored signature, any other document (a changed one) gets one. Returns the
        sources recorded as copies of each, for its ``also_sources``."""
        if not docs:
            return {}
        self.state.store_signatures([(d, s, u, m.hashvalues) for d, s, u, m in docs], self.banding, self.claimant)
        self.pending.difference_update(d for d, _, _, _ in docs)
        return self.state.copies([d for d, _, _, _ in docs])

    def renew(self) -> None:
        """Keep this run's unwritten claims live (they are written group by group)."""
        if self.pending:
            self.state.renew_claims(self.claimant)

    def release(self) -> None:
        """Give up the claims of articles this run did not write (a failed write, a failed run)."""
        if self.pending:
            self.state.release_claims(self.claimant)
            self.pending.clear()


class NearDuplicateIndex:
    """An in-memory LSH over signatures, for work on a corpus outside the pipeline (the ingest
    benchmark filters a corpus with it). The pipeline's truth is the claims in the shared state."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
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
        self.add(doc_id, source_id, url, from_values(values))

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
