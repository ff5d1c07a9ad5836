"""The Weaviate store passes the ChunkStore conformance suite, on the real weaviate-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from newsrag.store.weaviate import WeaviateStore
from tests.store.conformance import ChunkStoreConformance

pytestmark = pytest.mark.integration


class TestWeaviateStore(ChunkStoreConformance):
    @pytest.fixture
    def chunk_store(self, store: WeaviateStore) -> Iterator[WeaviateStore]:
        """conftest's store: a collection of its own, not created yet, dropped after the test."""
        yield store
