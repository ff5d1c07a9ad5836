"""The pipeline context the ingestion integration tests share: the test's own collection, the
session embedder, a private home, loopback fetching allowed, no fetch retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsrag.core.settings import IngestSettings
from newsrag.ingest.context import IngestContext
from newsrag.ingest.fetch import FetchSettings


@pytest.fixture
def ctx(store: Any, embedder: Any, tmp_path: Path) -> Iterator[IngestContext]:
    c = IngestContext(IngestSettings(), store=store, embedder=embedder, home=tmp_path,
                      fetch_settings=FetchSettings(allow_private=True, retries=0))
    yield c
    c.close()
