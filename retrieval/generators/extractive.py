"""The offline default generator: no language model, it quotes the context.

1. Every block is split into sentences (:func:`split_sentences`, abbreviation- and decimal-aware).
2. Each sentence gets a *support* score against the question::

       support = cosine_weight * cosine + (1 - cosine_weight) * overlap     (0.6 / 0.4 by default)

   ``cosine`` is between the embeddings (the search embedder) of the question and the sentence -
   or, for a sentence over ``clause_min_words`` words, the best of it and its clause windows, since
   a long sentence's embedding is diluted by everything else it says. ``overlap`` is the
   IDF-weighted share of the question's content words (lowercased, stopwords and question words
   removed, lightly stemmed) found in the sentence or in its article's title; IDF is computed over
   the context's sentences, so the topic (repeated everywhere) weighs little and the specific thing
   asked weighs most - above all when the context never mentions it, which is what an unanswerable
   question about a covered subject looks like ("What fare will the Harbor Line charge?").
   Only the ``embed_candidates`` sentences with the highest overlap are embedded (cosine 0 for the
   rest): embedding is most of an answer's cost, and without question words a sentence cannot
   reach ``min_support`` anyway.
3. It abstains with :data:`ABSTAIN_TEXT` when there are no blocks, when the best retrieval score
   is below ``min_retrieval_score`` (off by default: its scale depends on the search mode), or when
   the best support is below ``min_support``.
4. Otherwise up to ``max_sentences`` sentences within ``relative_support`` of the best (and not
   repeating a chosen one) are quoted, strongest first but grouped by article (an article's
   sentences follow its strongest one), each followed by its block's marker ``[n]``.

Thresholds were tuned on the golden questions of ``examples/news``: with hybrid search (alpha 0.3,
0.5 or 0.7, MMR or no reranking) the best support of the 24 answerable questions ranged 0.555-0.84
and that of the 4 unanswerable ones 0.26-0.48, hence ``min_support = 0.52``, about midway.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.settings import EmbeddingSettings, Settings, defaults
from newsrag.embeddings.base import Embedder, Vectors
from newsrag.retrieval.context import ContextBlock
from newsrag.retrieval.generators.answer_rank import (
    answer_score,
    asked_noun,
    expected_type,
    focus_share,
    focus_words,
    has_type,
    title_share,
)
from newsrag.retrieval.generators.base import (
    Citation,
    Generation,
    GenerationDelta,
    PromptRef,
    stream_whole,
)
from newsrag.retrieval.generators.injection import unsafe_reason

ABSTAIN_TEXT = "The sources do not say."
NAME = "extractive"


class ExtractiveSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_EXTRACTIVE_", extra="ignore")

    max_sentences: int = Field(3, ge=1, le=10)
    cosine_weight: float = Field(0.6, ge=0, le=1)
    # The scale depends on mode and fusion (relative_score: 0-1, ranked: ~0.01-0.03, bm25: unbounded),
    # so this gate is off by default; set it for the deployment's search settings.
    min_retrieval_score: float = Field(0.0, ge=0)
    min_support: float = Field(0.52, ge=0, le=1)
    clause_min_words: int = Field(20, ge=5)  # longer sentences are also scored by clause windows
    relative_support: float = Field(0.8, gt=0, le=1)  # quoted sentences must reach best * this
    # After the first, a sentence adding no focus word (newsrag.retrieval.generators.answer_rank) is quoted
    # only with support this close to the best: it adds nothing the reader asked for.
    keep_support: float = Field(0.92, gt=0, le=1.5)
    max_redundancy: float = Field(0.6, gt=0, le=1)  # word Jaccard above which a sentence repeats one chosen
    cache_size: int = Field(20_000, ge=0)  # sentence vectors kept in memory (about 1.5 KB each at 384 dims)
    # Sentences embedded per answer, those sharing the most question words: see ``score``.
    embed_candidates: int = Field(12, ge=1, le=500)


def _wordlist(text: str) -> frozenset[str]:
    return frozenset(text.split())


# -- sentences -------------------------------------------------------------------------------

ABBREVIATIONS = _wordlist("""
mr mrs ms dr prof st sr jr mt ft rev gen gov sen rep lt col capt sgt cmdr adm pres supt insp
inc ltd co corp bros assn dept univ est approx vs etc al fig no nos vol pp ed eds
jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun
""")
TIME_FOLLOWERS = _wordlist("""
monday tuesday wednesday thursday friday saturday sunday today tomorrow yesterday tonight local
january february march april may june july august september october november december et gmt utc
""")
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9$£€])")
_INITIALS = re.compile(r"(?:[A-Za-z]\.){2,}")
_INITIAL = re.compile(r"[A-Z]\.")
_CLOCK = re.compile(r"[ap]\.m\.", re.IGNORECASE)
_QUOTES = "\"'“”‘’()[]"


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``. Line breaks always end a sentence; ``.``, ``!`` and ``?`` end one when
    followed by space and a capital, digit or currency sign, unless the word before is a known
    abbreviation (``Dr.``, ``St.``, ``Inc.``), an initial (``A. Writer``) or a dotted acronym
    (``U.S.``). ``a.m.``/``p.m.`` end a sentence unless a day, month or time zone follows.
    Decimals (``2.1``) never split: no space follows their point."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line and line != "…":
            out.extend(_split_line(line))
    return out


def _split_line(line: str) -> list[str]:
    sentences, start = [], 0
    for m in _BOUNDARY.finditer(line):
        if _is_boundary(line, m.start(), m.end()):
            sentences.append(line[start:m.end()].strip())
            start = m.end()
    sentences.append(line[start:].strip())
    return [s for s in sentences if s]


def _is_boundary(line: str, dot: int, end: int) -> bool:
    if line[dot] != ".":
        return True
    word = line[:dot + 1].rsplit(None, 1)[-1].strip(_QUOTES)
    following = line[end:].split(None, 1)[0].strip(_QUOTES).lower() if line[end:].strip() else ""
    if _CLOCK.fullmatch(word):
        return following.rstrip(".,;:") not in TIME_FOLLOWERS
    if _INITIALS.fullmatch(word) or _INITIAL.fullmatch(word):
        return False
    return word[:-1].lower() not in ABBREVIATIONS


# -- scoring ---------------------------------------------------------------------------------

STOPWORDS = _wordlist("""
a an the and or but if of at by for with about against between into through during before after
above below to from up down in out on off over under again further then once here there when where
why how all any both each few more most other some such no nor not only own same so than too very
can will just don should now is are was were be been being have has had having do does did doing
would could might must shall may i me my we our you your he him his she her it its they them their
what which who whom whose this that these those am as until while also per say said says
many much
""")
IRREGULAR = {
    "won": "win", "ran": "run", "told": "tell", "left": "leave", "made": "make", "took": "take",
    "paid": "pay", "sold": "sell", "rose": "rise", "fell": "fall", "grew": "grow", "began": "begin",
    "begun": "begin", "chose": "choose", "chosen": "choose", "held": "hold", "brought": "bring",
    "bought": "buy", "found": "find", "lost": "lose", "spent": "spend", "struck": "strike",
    "built": "build", "met": "meet", "died": "die", "dead": "die", "death": "die", "deaths": "die",
    "gave": "give", "given": "give", "went": "go", "gone": "go", "saw": "see", "seen": "see",
    "men": "man", "women": "woman", "children": "child", "people": "person",
}
_TOKEN = re.compile(r"[a-z0-9]+(?:[.,'’-][a-z0-9]+)*")


def stem(word: str) -> str:
    """A deliberately small stemmer: irregular forms, possessive, plural, -ed/-ing, final e
    ("closed", "closing", "close" -> "clos"). Both sides go through it, so only consistency matters."""
    word = re.sub(r"['’]s$", "", IRREGULAR.get(word, word))
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[:-len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+(?=(?:and|but|while|which|who|after|before)\s)")


def clause_windows(sentence: str, min_words: int = 6) -> list[str]:
    """Clauses of a long sentence (split at , ; : and before and/but/while/which/who/after/before,
    short pieces merged forward), alone and in pairs. A long sentence's embedding is diluted by
    everything it says; its best clause window shows whether it answers the question."""
    clauses: list[str] = []
    current = ""
    for piece in _CLAUSE.split(sentence):
        current = f"{current} {piece.strip()}".strip()
        if len(current.split()) >= min_words:
            clauses.append(current)
            current = ""
    if current and clauses:
        clauses[-1] = f"{clauses[-1]} {current}"
    if len(clauses) < 2:
        return []
    return clauses + [f"{a} {b}" for a, b in itertools.pairwise(clauses)]


def idf_weights(question_words: set[str], sentence_words: Sequence[set[str]]) -> dict[str, float]:
    """log((N + 1) / (df + 0.5)) over the context's sentences: the topic, repeated everywhere,
    weighs little; the specific thing asked weighs much, most when the context never mentions it."""
    n = len(sentence_words)
    return {w: math.log((n + 1) / (sum(1 for s in sentence_words if w in s) + 0.5)) for w in question_words}


@dataclass(frozen=True)
class Scored:
    block: ContextBlock
    chunk_id: str
    position: int  # reading order within the block
    text: str
    words: frozenset[str]
    cosine: float
    overlap: float
    support: float


def _candidates(blocks: Sequence[ContextBlock]) -> list[tuple[ContextBlock, str, int, str]]:
    """Quotable sentences; text addressing the reader (:mod:`.injection`) is never one."""
    out, seen = [], set()
    for block in blocks:
        pieces = [(p.chunk_id, p.text) for p in block.parts] or [
            (block.chunk_ids[0] if block.chunk_ids else "", block.text)]
        position = 0
        for chunk_id, text in pieces:
            for sentence in split_sentences(text):
                key = sentence.lower()
                if (key not in seen and len(content_words(sentence)) >= 2
                        and unsafe_reason(sentence, block.url) is None):
                    seen.add(key)
                    out.append((block, chunk_id, position, sentence))
                position += 1
    return out


class ExtractiveGenerator:
    """Quotes up to three supporting sentences with ``[n]`` markers, or abstains."""

    name = NAME
    model = "extractive/v1"

    def __init__(self, embedder: Embedder, settings: ExtractiveSettings | None = None) -> None:
        self.embedder = embedder
        self.settings = settings or defaults(ExtractiveSettings)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def generate(self, question: str, blocks: list[ContextBlock], *,
                 prompt: PromptRef | None = None) -> Generation:
        if not blocks or max(b.score for b in blocks) < self.settings.min_retrieval_score:
            return self._abstain()
        scored = self.score(question, blocks)
        if not scored:
            return self._abstain()
        best = max(scored, key=lambda s: s.support)
        if best.support < self.settings.min_support:
            return self._abstain()
        return self._compose(self._select(question, scored, best))

    def stream(self, question: str, blocks: list[ContextBlock], *,
               prompt: PromptRef | None = None) -> Iterator[GenerationDelta]:
        yield from stream_whole(self.generate(question, blocks, prompt=prompt))

    def score(self, question: str, blocks: Sequence[ContextBlock]) -> list[Scored]:
        """Every candidate sentence with its support (see the module docstring). Only the
        ``embed_candidates`` sentences with the most (IDF-weighted) question words are embedded;
        the others keep cosine 0, so their support stays under ``1 - cosine_weight``, below any
        useful ``min_support``: embedding them would cost most of an answer's time and change none."""
        candidates = _candidates(blocks)
        if not candidates:
            return []
        q_words = content_words(question)
        s_words = [content_words(c[3]) for c in candidates]
        idf = idf_weights(q_words, s_words)
        total = sum(idf.values())
        overlaps = []
        for (block, *_), words in zip(candidates, s_words, strict=True):
            covered = q_words & (words | content_words(block.title))
            overlaps.append(sum(idf[x] for x in covered) / total if total else 0.0)
        keep = sorted(range(len(candidates)), key=lambda i: -overlaps[i])[: self.settings.embed_candidates]
        cosines = [0.0] * len(candidates)
        for i, cosine in zip(keep, self._cosines(question, [candidates[i][3] for i in keep]), strict=True):
            cosines[i] = cosine
        w = self.settings.cosine_weight
        return [Scored(block, chunk_id, position, sentence, frozenset(words), cos, ov, w * cos + (1 - w) * ov)
                for (block, chunk_id, position, sentence), words, cos, ov
                in zip(candidates, s_words, cosines, overlaps, strict=True)]

    def _cosines(self, question: str, sentences: list[str]) -> list[float]:
        """Per sentence, the best cosine of the sentence or (if long) one of its clause windows."""
        texts, owner = list(sentences), list(range(len(sentences)))
        for i, sentence in enumerate(sentences):
            if len(sentence.split()) > self.settings.clause_min_words:
                windows = clause_windows(sentence)
                texts += windows
                owner += [i] * len(windows)
        qv = np.asarray(self.embedder.embed_query(question), dtype=np.float32).reshape(-1)
        sims = self._vectors(texts) @ qv
        best = [-1.0] * len(sentences)
        for i, sim in zip(owner, sims.tolist(), strict=True):
            best[i] = max(best[i], float(sim))
        return best

    def _vectors(self, texts: list[str]) -> Vectors:
        """Embeddings of texts, through a bounded LRU cache: stored chunks are quoted again and again."""
        if self.settings.cache_size == 0:
            return np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)
        with self._lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = np.asarray(self.embedder.embed_documents(missing), dtype=np.float32)
            found.update(zip(missing, fresh, strict=True))
            with self._lock:
                self._cache.update(zip(missing, fresh, strict=True))
                while len(self._cache) > self.settings.cache_size:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def _select(self, question: str, scored: list[Scored], best: Scored) -> list[Scored]:
        """Sentences within ``relative_support`` of the best, ordered by how well they answer
        (:mod:`.answer_rank`); after the first, only those adding a focus word not yet covered."""
        s = self.settings
        floor = max(s.min_support, best.support * s.relative_support)
        expected, noun = expected_type(question), asked_noun(question)
        focus = {c.block.n: focus_words(question, c.block.title, content_words) for c in scored}
        about = {c.block.n: title_share(question, c.block.title, content_words) for c in scored}
        idf = idf_weights(set().union(*focus.values()), [set(c.words) for c in scored])
        top = max(c.block.score for c in scored) or 1.0
        ranked = sorted((c for c in scored if c.support >= floor), key=lambda c: (
            -answer_score(c.support, focus_share(c.words, focus[c.block.n], idf), about[c.block.n],
                          c.block.score / top, has_type(c.text, expected, noun, stem)), c.block.n, c.position))
        chosen: list[Scored] = []
        covered: set[str] = set()
        for cand in ranked:
            adds = bool(focus[cand.block.n] & cand.words - covered) or cand.support >= best.support * s.keep_support
            if chosen and (not adds or any(_jaccard(cand.words, c.words) > s.max_redundancy for c in chosen)):
                continue
            chosen.append(cand)
            covered |= cand.words | content_words(cand.block.title)
            if len(chosen) == s.max_sentences:
                break
        return chosen

    def _compose(self, chosen: list[Scored]) -> Generation:
        text = " ".join(f"{c.text} [{c.block.n}]" for c in chosen)
        citations = [Citation(n=c.block.n, chunk_id=c.chunk_id, doc_id=c.block.doc_id, url=c.block.url,
                              title=c.block.title, quote=c.text) for c in chosen]
        return Generation(text=text, citations=citations, abstained=False, model=self.model, generator=NAME)

    def _abstain(self) -> Generation:
        return Generation(text=ABSTAIN_TEXT, citations=[], abstained=True, model=self.model, generator=NAME)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


# The `extractive` entry point of the newsrag.generators group (pyproject.toml).
def _create(embedder: Embedder | None, settings: Settings | None = None) -> ExtractiveGenerator:
    root = settings or Settings({})
    if embedder is None:
        from newsrag.embeddings import create_embedder

        embedder = create_embedder(root.get(EmbeddingSettings))
    return ExtractiveGenerator(embedder, root.get(ExtractiveSettings))
