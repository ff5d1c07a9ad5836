"""The README's first command: start the embedded Weaviate, store sample texts, run one hybrid query."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from embeddings import create_embedder
from embeddings.base import vector_name
from newsrag.weaviate_server import LocalWeaviate
from retrieval.store import WeaviateStore
from retrieval.types import StoredObject

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "sample_texts.jsonl"
NAMESPACE = uuid.UUID("6f1d6c1e-8f57-4a2b-9a43-3c1b7f0e2d11")


def run_quickstart(question: str, console: Console) -> None:
    server = LocalWeaviate.from_env()
    server.install()
    state = server.start()
    console.print(f"Weaviate ready at {state.http_url} (data in {state.data_dir})")
    records = [json.loads(line) for line in SAMPLES.read_text().splitlines() if line.strip()]
    embedder = create_embedder()
    name = vector_name(embedder.model_id)
    vectors = embedder.embed_documents([r["text"] for r in records])
    with WeaviateStore(collection="QuickstartSample") as store:
        store.ensure_collection([name])
        store.upsert([StoredObject(str(uuid.uuid5(NAMESPACE, r["id"])),
                                   {"text": r["text"], "title": r["title"], "doc_id": r["id"], "chunk_index": 0},
                                   vectors[i].tolist()) for i, r in enumerate(records)], name)
        hits = store.hybrid(question, embedder.embed_query(question), name, limit=3)
        console.print(f"{store.count()} objects stored; top hits for: [bold]{question}[/]")
    table = Table("score", "title", "text")
    for hit in hits:
        table.add_row(f"{hit.score:.3f}", hit.properties["title"], hit.properties["text"])
    console.print(table)
