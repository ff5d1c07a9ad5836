"""The records an evaluation run produces: what was asked, what came back, how it scored.

These are the contract between the runner, the history store, the regression gate and the
report. Everything is JSON-serializable (pydantic) so a run can travel through XCom and be stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class IndexSnapshot(BaseModel):
    collection: str
    object_count: int
    last_ingest_at: datetime | None = None  # newest ingested_at in the collection
    vector_name: str = ""


class RetrievalConfig(BaseModel):
    """The retrieval settings a run used (so a broken setting is visible in the report)."""

    mode: str = "hybrid"
    alpha: float = 0.5
    fusion: str = "relative_score"
    top_k: int = 8
    query_properties: list[str] = Field(default_factory=lambda: ["context"])
    rerank: str = "mmr"


class MetricValue(BaseModel):
    value: float | None
    method: str  # "offline:<name>" or "judge:<model>"; every figure says how it was produced
    details: dict[str, Any] = Field(default_factory=dict)


class QuestionResult(BaseModel):
    case_id: str
    question: str
    tags: list[str] = Field(default_factory=list)
    type: str = "fact"
    answerable: bool = True
    answer: str = ""
    abstained: bool = False
    citations: list[dict[str, Any]] = Field(default_factory=list)  # url, title, quote, chunk_id, n
    retrieved: list[dict[str, Any]] = Field(default_factory=list)  # chunk_id, doc_id, url, title, score, text, relevant
    metrics: dict[str, MetricValue] = Field(default_factory=dict)  # hit@k, recall@k, mrr, ndcg@k, faithfulness, ...
    latency_ms: float | None = None
    error: str | None = None  # a per-question failure (timeout, judge failure, ...) is recorded, never fatal
    failure_reason: str | None = None  # why this question counts as failed, for the worst-questions table


class Aggregate(BaseModel):
    mean: float | None
    low: float | None = None  # bootstrap 95 % interval
    high: float | None = None
    n: int = 0
    n_undefined: int = 0
    method: str = ""


class EvalRun(BaseModel):
    run_id: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "ok"  # ok | regression | failed
    golden_path: str
    golden_sha256: str
    sample_size: int | None = None
    index: IndexSnapshot
    prompt_name: str
    prompt_version: str
    prompt_arm: str | None = None
    generator: str
    model: str
    retrieval: RetrievalConfig
    judge: str | None = None  # judge model when the LLM judge was on
    results: list[QuestionResult] = Field(default_factory=list)
    aggregates: dict[str, Aggregate] = Field(default_factory=dict)
    per_tag: dict[str, dict[str, Aggregate]] = Field(default_factory=dict)
    per_type: dict[str, dict[str, Aggregate]] = Field(default_factory=dict)
    timings: dict[str, float] = Field(default_factory=dict)
    regressions: list[str] = Field(default_factory=list)  # human-readable reasons
    notes: list[str] = Field(default_factory=list)
