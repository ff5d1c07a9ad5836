"""Retrieval: the Weaviate store (the only module importing ``weaviate``), search, generators, answers."""
