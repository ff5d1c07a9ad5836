"""The targets the benchmark checks, and the shape of one run."""

from __future__ import annotations

TARGET_ASK_P95_MS = 150.0  # /v1/ask p95 at TARGET_ASK_SIZE chunks
TARGET_ASK_SIZE = 50_000
TARGET_OVERHEAD = 1.3  # /v1/search p95 / (raw hybrid p95 + raw embed p95)
WARMUP_ROUNDS = 20
QUESTIONS = 50
CHUNKS_PER_DOC = 3
INSERT_BATCH = 1000
PROG = "bench/query.py"
# The query path measured: its sources' digest is reported with the figures.
CODE = ("app", "retrieval", "embeddings", "evaluation/feedback.py", "newsrag/core/settings.py")
