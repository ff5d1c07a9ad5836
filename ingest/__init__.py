"""Ingestion: source registry, fetching, parsing, dedup, chunking and the pipeline into the store."""
