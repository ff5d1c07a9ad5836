"""Everything a pipeline run needs, opened lazily once and closed together.

It is configured by the root :class:`~newsrag.core.settings.Settings` an edge built: every concern
(ingestion, paths, fetching, field limits, analysis, the store, the embedder) comes from it, and so
do the values of ``${VAR}`` references in a source's headers. The process environment is never read.

Local state is a cache of the store: :meth:`IngestContext.begin_source` reads the collection's
generation before each source and binds the state to it, so markers written for a collection
that has since been dropped or re-created are never trusted."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Any

from newsrag.core.settings import IngestSettings, PathSettings, Settings, store_location
from newsrag.embeddings import Embedder, create_embedder
from newsrag.embeddings.base import vector_name
from newsrag.embeddings.cache import EmbeddingCache
from newsrag.ingest.chunking import Chunker
from newsrag.ingest.dedup import NearDuplicateIndex
from newsrag.ingest.fetch import Fetcher, FetchSettings
from newsrag.ingest.limits import FieldLimits
from newsrag.ingest.sources import SourceContext
from newsrag.ingest.state import IngestState
from newsrag.store.analysis import AnalysisSettings
from newsrag.store.protocol import ChunkStore
from newsrag.store.weaviate import WeaviateStore


def state_location(settings: Settings, home: Path | None = None) -> str:
    """``NEWSRAG_INGEST_STATE_FILE``, else ``NEWSRAG_DATABASE_URL``, else ``ingest-state.sqlite`` under
    ``home`` (default: ``NEWSRAG_HOME``)."""
    return store_location(settings, settings.get(IngestSettings).state_file, "ingest-state.sqlite", home)


def embedding_cache_location(settings: Settings, home: Path | None = None) -> str:
    """``NEWSRAG_INGEST_EMBEDDING_CACHE``, else ``NEWSRAG_DATABASE_URL``, else ``embedding-cache.sqlite``
    under ``home`` (default: ``NEWSRAG_HOME``)."""
    return store_location(settings, settings.get(IngestSettings).embedding_cache, "embedding-cache.sqlite", home)


class IngestContext:
    """``settings``: the root (every concern from it), or the IngestSettings alone (the others at
    their defaults); None: the defaults. ``store``, ``embedder``, ``fetch_settings`` and ``home``
    replace what the root would give (an injected store or embedder is not closed here)."""

    def __init__(self, settings: Settings | IngestSettings | None = None, *, store: ChunkStore | None = None,
                 embedder: Embedder | None = None, fetch_settings: FetchSettings | None = None,
                 base_dir: Path | None = None, home: Path | None = None) -> None:
        self.root = settings if isinstance(settings, Settings) else Settings({}, *([settings] if settings else []))
        self.settings = self.root.get(IngestSettings)
        self.home = home or self.root.get(PathSettings).home
        self._store = store
        self._embedder = embedder
        self._fetch_settings = fetch_settings
        self.base_dir = base_dir or Path.cwd()
        self._chunkers: dict[tuple[int, int], Chunker] = {}
        self._schema_ready = False
        self._generation: str | None = None  # the collection generation the state is bound to
        self.window: tuple[Any, Any] | None = None  # backfill: only articles published in [start, end)

    @cached_property
    def store(self) -> ChunkStore:
        return self._store or WeaviateStore(self.root)

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or create_embedder(self.root)

    @property
    def vector_name(self) -> str:
        return vector_name(self.embedder.model_id)

    @cached_property
    def analysis(self) -> AnalysisSettings:
        return self.root.get(AnalysisSettings)

    @property
    def limits(self) -> FieldLimits:
        """The longest fields an article may have (``NEWSRAG_INGEST_MAX_*``)."""
        return self.root.get(FieldLimits)

    @cached_property
    def cache(self) -> EmbeddingCache:
        return EmbeddingCache(embedding_cache_location(self.root, self.home))

    @cached_property
    def state(self) -> IngestState:
        return IngestState(state_location(self.root, self.home),
                           scope=f"{self.store.name}/{self.vector_name}", generation=self._generation or "")

    @property
    def generation(self) -> str | None:
        """The collection generation of the last :meth:`begin_source` (None before it)."""
        return self._generation

    def begin_source(self) -> str:
        """Check the collection before a source runs (one schema read): create it when it is
        missing, and bind the state to its generation. A new generation (the collection was dropped
        or re-created) forgets every marker, signature and remembered document of the old one."""
        found = self.store.generation()
        if found is None:
            self._schema_ready = False
            self.ensure_schema()
            found = self.store.ensure_generation()
        self.state.bind(found)  # always: a verification may have bound it to the generation it checked
        if found != self._generation:
            if self._generation is not None:  # re-created since this context last looked: its schema too
                self._schema_ready = False
            self._generation = found
            self.state.forget_other_generations()
            self.__dict__.pop("near_dups", None)  # signatures are re-read for this generation
        return found

    @cached_property
    def fetcher(self) -> Fetcher:
        return Fetcher(self._fetch_settings or self.root.get(FetchSettings))

    @cached_property
    def near_dups(self) -> NearDuplicateIndex:
        index = NearDuplicateIndex(self.settings.near_dup_threshold)
        for doc_id, source_id, url, values in self.state.signatures():
            index.add_hashvalues(doc_id, source_id, url, values)
        return index

    def source_context(self, trust_markers: bool = True) -> SourceContext:
        """``trust_markers`` False: send no validators and ignore "seen" marks (a full or windowed read)."""
        return SourceContext(self.fetcher, self.state, self.base_dir, self.settings.max_full_article_fetches,
                             trust_markers=trust_markers, environ=self.root.environ)

    def chunker(self, options: Any | None) -> Chunker:
        size = options.chunk_tokens if options else self.settings.chunk_tokens
        overlap = options.overlap_tokens if options else self.settings.overlap_tokens
        if (size, overlap) not in self._chunkers:
            tokenizer = getattr(self.embedder, "tokenizer", None)
            if tokenizer is None:
                from newsrag.embeddings.local import LocalEmbedder

                tokenizer = LocalEmbedder().tokenizer  # token counts of the default model as a proxy
            self._chunkers[(size, overlap)] = Chunker(tokenizer, size, overlap, self.settings.context_chunks,
                                                      self.analysis.stemmer)
        return self._chunkers[(size, overlap)]

    @property
    def overlap_writes(self) -> bool:
        if self.settings.overlap_writes is not None:
            return self.settings.overlap_writes
        return self.store.remote  # a remote store does not compete for our cores

    def ensure_schema(self) -> None:
        if not self._schema_ready:
            self.store.ensure_collection([self.vector_name])
            self._schema_ready = True

    def close(self) -> None:
        for name in ("fetcher", "cache", "state"):
            if name in self.__dict__:
                self.__dict__.pop(name).close()
        if "store" in self.__dict__ and self._store is None:
            self.__dict__.pop("store").close()

    def __enter__(self) -> IngestContext:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
