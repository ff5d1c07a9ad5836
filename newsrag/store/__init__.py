"""The vector store: the Weaviate store and the pinned local weaviate-server."""
