"""Query-latency benchmark: raw Weaviate hybrid and raw query embedding vs. the app's /v1/search and
/v1/ask over HTTP, at several collection sizes, in one run.

    .venv/bin/python bench/query.py [--sizes 10000,50000] [--queries 200] [--corpus PATH] [--json]

What it does, on a private weaviate-server in a temporary NEWSRAG_HOME (always stopped at the end):

1. For each size N it builds a collection of N chunks (the schema of ``newsrag.ingest.pipeline.stored_chunk``:
   ~150-200 words of news-like text, titles, 6 source ids, dates spread over the past year, 3 chunks
   per article) with PRECOMPUTED vectors. Embedding 50k chunks for real would take ~25 minutes on a
   2-core machine, so vectors are derived cheaply but realistically:

   * a *pool* of ~1,000 chunk texts (the first ~1,000 chunks of the collection) is embedded once,
     for real, with the local all-MiniLM-L6-v2 (``embedding_text(title, text)``, as ingestion does);
     those chunks get their real vector;
   * every other chunk is about the same topic as one pool chunk (synthetic text: same topic and
     chunk position; ``--corpus``: a lightly varied copy of a real chunk) and gets that pool
     vector plus gaussian noise (sigma ``--noise`` per dimension, 0.02 by default, i.e. a cosine of
     ~0.93 to its parent and ~0.87 between siblings), L2-normalized. The vector space therefore has
     MiniLM's real geometry (topic clusters, anisotropy), with ~N/1000 near neighbours per pool chunk.

   Objects are written with ``WeaviateStore.upsert`` in batches of 1,000 (insert throughput reported).
   Text is synthetic by default (12 news domains x 4 subjects, generated deterministically from
   ``--seed``); ``--corpus PATH`` (JSONL / globs, e.g. ``../shared/data/realtimeqa/*_gcs.jsonl``)
   takes real article text instead, and RealTimeQA questions from the sibling ``*_qa.jsonl`` files.
2. ~50 distinct questions about topics present in the text (plus 20 other warm-up questions).
   Query embeddings are REAL: the app embeds each query with MiniLM.
3. The app (``create_app`` + ``Services`` on this collection, extractive generator, rate limit off)
   is served by uvicorn on loopback in a background thread and called with one keep-alive
   ``httpx.Client``. After 20 warm-up rounds, ``--queries`` rounds follow; each round takes the next
   question of a seeded shuffle (every question ``queries/50`` times) and performs, in an order that
   rotates every round:
   * raw hybrid: ``store.hybrid(q, precomputed query vector, ...)`` with the app's own search settings
     (alpha, fusion, limit = candidates, query_properties): Weaviate time only;
   * raw query embedding: one MiniLM forward pass, ``embed_documents([q])`` (``LocalEmbedder.embed_query``
     may keep a query cache; the raw figure is the model cost the app pays on a cache miss);
   * ``GET /v1/search?q=...`` and ``POST /v1/ask`` (non-streaming).
   ``/v1/ask`` is reported COLD (the first time each question is asked: the extractive generator
   embeds the candidate sentences of the context; after the warm-up a fresh generator, with an
   empty sentence cache, replaces the warmed-up one)
   and WARM (repeats: those vectors come from the generator's in-memory cache). ``/v1/search`` is
   also split by whether the request ran the model on the query or found its vector cached.
   The overhead ratio is ``/v1/search p95 / (raw hybrid p95 + raw embed p95)``: what the app adds
   beyond the two calls it cannot avoid.
4. Stage profile of /v1/ask (the Answer's ``timings``, plus what the app's embedder, the
   generator's embedder, the store and the answer log recorded: the app is built from recording
   objects through its public constructors, see :mod:`bench.query_latency.probes`), whether repeated identical
   calls return identical results (a WARM ask that retrieves other chunks embeds new sentences),
   build time, peak RSS of this process (which hosts the app) and of weaviate-server, load average
   and the CPU other processes used meanwhile (the figures are only as good as the machine was
   quiet), and a digest of the query-path sources measured.

Parts: :mod:`.synthetic` and :mod:`.news_templates` (the synthetic text), :mod:`.corpus` (real
text, the collection and its vectors), :mod:`.probes` (what the app is built from), :mod:`.rounds`
(one size), :mod:`.analysis` (figures), :mod:`.report` (tables), :mod:`.main` (the run and its
command line, ``bench/query.py``).
"""
