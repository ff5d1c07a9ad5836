"""OpenAI and Cohere embedders against ``FakeProviderServer`` on 127.0.0.1: no test reaches an
outside host. Shared behaviour is tested once per provider through a ``Kit`` of what differs."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from newsrag.core.errors import ConfigError, ProviderError
from newsrag.core.settings import EmbeddingSettings, Settings, load
from newsrag.embeddings import Embedder, create_embedder
from newsrag.embeddings.base import normalize
from newsrag.embeddings.cohere import CohereEmbedder, CohereEmbeddingSettings
from newsrag.embeddings.openai import OpenAIEmbedder, OpenAIEmbeddingSettings
from newsrag.providers.governor import BudgetExceeded, RateGovernor, reset_governors
from tests.embeddings import fake_providers as fp
from tests.embeddings.fake_providers import FakeProviderServer, Received, Reply

pytestmark = pytest.mark.unit

KEY = "sk-test-0123456789abcdef"  # not a placeholder: NEWSRAG_ENV is "test" in the suite
Provider = OpenAIEmbedder | CohereEmbedder
Srv = FakeProviderServer
Waits = list[float]
_MADE: list[Provider] = []


@dataclass
class Kit:
    name: str
    path: str  # where the SDK posts
    prefix: str  # of the base URL, after host:port
    model: str  # the default model
    texts: str  # the request field holding the texts
    embedder: type[OpenAIEmbedder | CohereEmbedder]
    settings: type[OpenAIEmbeddingSettings | CohereEmbeddingSettings]
    ok: Callable[..., Callable[[Received], Reply]]
    error: Callable[..., Reply]
    native: int = 1536

    @property
    def var(self) -> str:  # the prefix of its environment variables
        return self.name.upper()

    def base(self, server: Any) -> str:
        return str(server.base_url) + self.prefix

    def make(self, server: Any, sleep: Callable[[float], None] = time.sleep,
             governor: RateGovernor | None = None, timeout: float = 5.0, max_retries: int = 4,
             **embed: Any) -> Provider:
        ps = self.settings(api_key=SecretStr(KEY), base_url=self.base(server), timeout=timeout,
                           max_retries=max_retries)
        emb = self.embedder(load(EmbeddingSettings, provider=self.name, **embed), ps,  # type: ignore[arg-type]
                            governor=governor or RateGovernor(self.name, 10**6, 10**9), sleep=sleep)
        _MADE.append(emb)
        return emb


OPENAI = Kit("openai", "/v1/embeddings", "/v1", "text-embedding-3-small", "input", OpenAIEmbedder,
             OpenAIEmbeddingSettings, fp.openai_embeddings, fp.openai_error)
COHERE = Kit("cohere", "/v2/embed", "", "embed-v4.0", "texts", CohereEmbedder, CohereEmbeddingSettings,
             fp.cohere_embed, fp.cohere_error)
KITS = pytest.mark.parametrize("kit", [OPENAI, COHERE], ids=lambda k: k.name)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    names = ["API_KEY", "BASE_URL", "TIMEOUT", "MAX_RETRIES", "RPM", "TPM", "BUDGET_TOKENS"]
    for name in [f"{p}_{n}" for p in ("OPENAI", "COHERE") for n in names] + ["CO_API_URL"]:
        monkeypatch.delenv(name, raising=False)
    for name in ("PROVIDER", "MODEL", "BATCH_SIZE", "DIMENSIONS"):
        monkeypatch.delenv(f"NEWSRAG_EMBED_{name}", raising=False)
    reset_governors()
    yield
    while _MADE:
        _MADE.pop().close()
    reset_governors()


@pytest.fixture
def server() -> Iterator[Srv]:
    with FakeProviderServer() as s:
        s.route(OPENAI.path, fp.openai_embeddings())
        s.route(COHERE.path, fp.cohere_embed())
        yield s


@pytest.fixture
def waits() -> Waits:  # what the embedder would have slept, between retries
    return []


def expected(texts: list[str], dims: int) -> np.ndarray:
    return normalize([fp.fake_vector(t, dims) for t in texts])


@KITS
def test_embeds_normalized_float32_with_the_documented_request(kit: Kit, server: Srv, waits: Waits) -> None:
    texts = ["Stocks fell on Tuesday.", "", "Markets dropped sharply."]
    emb = kit.make(server, waits.append)
    assert isinstance(kit.make(server), Embedder)
    assert emb.model_id == f"{kit.name}/{kit.model}" and emb.dimensions == kit.native
    vectors = emb.embed_documents(texts)
    assert vectors.shape == (3, kit.native) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[[0, 2]], expected([texts[0], texts[2]], kit.native), atol=1e-5)
    (req,) = server.requests
    assert (req.method, req.path, req.headers["authorization"]) == ("POST", kit.path, f"Bearer {KEY}")
    assert req.json[kit.texts] == ["Stocks fell on Tuesday.", " ", "Markets dropped sharply."] and req.json["model"] == kit.model
    if kit is OPENAI:
        assert req.json["encoding_format"] == "float" and "dimensions" not in req.json
    else:
        assert (req.json["input_type"], req.json["embedding_types"], req.json.get("output_dimension")) == (
            "search_document", ["float"], None)
    assert emb.embed_documents([]).shape == (0, kit.native) and len(server.requests) == 1


@KITS
def test_reduced_dimensions_are_requested_and_named(kit: Kit, server: Srv, waits: Waits) -> None:
    emb = kit.make(server, waits.append, dimensions=512)
    assert emb.dimensions == 512 and emb.model_id == f"{kit.name}/{kit.model}@512"
    vector = emb.embed_query("what happened to the markets?")
    assert vector.shape == (512,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
    assert server.requests[0].json["dimensions" if kit is OPENAI else "output_dimension"] == 512
    if kit is COHERE:  # queries and documents are embedded differently
        emb.embed_documents(["who won?"])
        assert [r.json["input_type"] for r in server.requests] == ["search_query", "search_document"]


def test_model_and_dimension_validation(server: Srv) -> None:
    large = OPENAI.make(server, model="text-embedding-3-large")
    assert (large.dimensions, large.model_id) == (3072, "openai/text-embedding-3-large")
    assert OPENAI.make(server, dimensions=1536).model_id == "openai/text-embedding-3-small"
    assert COHERE.make(server, model="embed-english-v3.0").dimensions == 1024
    assert COHERE.make(server, model="embed-multilingual-v3.0").model_id == "cohere/embed-multilingual-v3.0"
    for kit, model, dims, match in [
        (OPENAI, None, 2000, "NEWSRAG_EMBED_DIMENSIONS.*at most 1536"),
        (OPENAI, "text-embedding-ada-002", 512, "NEWSRAG_EMBED_DIMENSIONS.*cannot return fewer"),
        (OPENAI, "nomic-embed-text", None, "NEWSRAG_EMBED_MODEL"),
        (COHERE, "embed-english-v3.0", 512, "always returns 1024"),
        (COHERE, None, 300, r"supports \[256, 512, 1024, 1536\]"),
    ]:
        with pytest.raises(ConfigError, match=match):
            kit.make(server, model=model, dimensions=dims)
    other = OPENAI.make(server, model="nomic-embed-text", dimensions=768)  # an OpenAI-compatible server
    server.route(OPENAI.path, fp.openai_embeddings(768))
    assert other.embed_documents(["x"]).shape == (1, 768) and "dimensions" not in server.requests[0].json


@KITS
def test_batching_splits_requests_and_keeps_order(kit: Kit, server: Srv, waits: Waits) -> None:
    texts = [f"Headline number {i}" for i in range(7)]
    vectors = kit.make(server, waits.append, batch_size=3).embed_documents(texts)
    assert [len(r.json[kit.texts]) for r in server.requests] == [3, 3, 1]
    assert np.allclose(vectors, expected(texts, kit.native), atol=1e-5)


def test_provider_batch_caps_apply(server: Srv, waits: Waits) -> None:
    COHERE.make(server, waits.append, batch_size=500).embed_documents([f"t{i}" for i in range(200)])
    assert [len(r.json["texts"]) for r in server.requests] == [96, 96, 8]  # Cohere: 96 at most
    assert OPENAI.make(server, batch_size=2048).batch_size == 2048
    assert OPENAI.make(server).batch_size == 512  # NEWSRAG_EMBED_BATCH_SIZE unset: not MiniLM's 16
    big = ["x" * 400_000, "y" * 400_000, "z" * 400_000]  # 100k tokens each; 250k per request at most
    OPENAI.make(server, waits.append).embed_documents(big)
    assert [len(r.json["input"]) for r in server.requests[3:]] == [2, 1]


def test_openai_out_of_order_items_are_sorted_by_index(server: Srv, waits: Waits) -> None:
    server.route(OPENAI.path, fp.openai_embeddings(shuffle=True))
    texts = ["alpha", "beta", "gamma", "delta"]
    assert np.allclose(OPENAI.make(server, waits.append).embed_documents(texts), expected(texts, 1536), atol=1e-5)


def _slow(req: Received) -> Reply:
    time.sleep(1.0)  # longer than the client's timeout
    return fp.openai_error(500)


@KITS
@pytest.mark.parametrize("case", ["429-retry-after", "5xx-twice", "timeout"])
def test_transient_errors_are_retried_then_succeed(kit: Kit, case: str, server: Srv, waits: Waits) -> None:
    cases: dict[str, list[Reply | fp.Responder]] = {
        "429-retry-after": [kit.error(429, "busy", **{"Retry-After": "2"})],
        "5xx-twice": [kit.error(500, "boom"), kit.error(503, "unavailable")], "timeout": [_slow]}
    replies = cases[case]
    server.script(kit.path, *replies)
    emb = kit.make(server, waits.append, timeout=0.4 if case == "timeout" else 5.0)
    assert emb.embed_documents(["a", "b"]).shape == (2, kit.native)
    assert len(server.requests) == len(replies) + 1 and len(waits) == len(replies)
    assert waits == [2.0] if case == "429-retry-after" else all(0 <= w <= 20 for w in waits)


@KITS
def test_retries_stop_after_max_retries_and_stay_retryable(kit: Kit, server: Srv, waits: Waits) -> None:
    server.route(kit.path, kit.error(502, "bad gateway"))
    with pytest.raises(ProviderError, match="HTTP 502") as info:
        kit.make(server, waits.append, max_retries=2).embed_documents(["a"])
    assert info.value.retryable and len(server.requests) == 3 and len(waits) == 2
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        nowhere = SimpleNamespace(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    with pytest.raises(ProviderError, match="connection failed") as info:
        kit.make(nowhere, waits.append, max_retries=1).embed_documents(["a"])
    assert info.value.retryable and len(waits) == 3


@KITS
@pytest.mark.parametrize("status", [401, 400])
def test_client_errors_are_not_retried_and_never_quote_the_key(kit: Kit, status: int, server: Srv, waits: Waits) -> None:
    server.route(kit.path, kit.error(status, f"Incorrect or too long, key {KEY}"))
    with pytest.raises(ProviderError) as info:
        kit.make(server, waits.append).embed_documents(["a"])
    err, text = info.value, str(info.value)
    assert not err.retryable and len(server.requests) == 1 and waits == []
    assert text.startswith(f"{kit.name}: {kit.model}: HTTP {status}") and KEY not in text + repr(err)
    assert err.__cause__ is None and err.__suppress_context__  # the SDK's text is not chained
    if status == 401:  # the provider's text may quote part of the key: left out, the variable named
        assert text.endswith(f"check {kit.var}_API_KEY")
    else:  # other details are passed on, the key redacted
        assert text.endswith("Incorrect or too long, key ***")


@KITS
@pytest.mark.parametrize("reply", ["not json", "no data", "wrong length", "too few"])
def test_malformed_replies_raise_provider_error(kit: Kit, reply: str, server: Srv, waits: Waits) -> None:
    replies: dict[str, Callable[[Received], Reply] | Reply] = {
        "not json": (200, {}, b"{not json"),
        "no data": (200, {}, {"object": "list", "id": "x"}),
        "wrong length": kit.ok(length=7),
        "too few": (200, {}, {"object": "list", "id": "x", "data": [], "embeddings": {"float": []}}),
    }
    server.route(kit.path, replies[reply])
    with pytest.raises(ProviderError, match="malformed reply") as info:
        kit.make(server, waits.append).embed_documents(["a", "b"])
    assert not info.value.retryable and info.value.provider == kit.name and len(server.requests) == 1


@KITS
def test_budget_exceeded_sends_nothing(kit: Kit, server: Srv, waits: Waits) -> None:
    gov = RateGovernor(kit.name, 10**6, 10**9, budget_tokens=10)
    emb = kit.make(server, waits.append, governor=gov)
    emb.embed_documents(["short"])  # 2 estimated tokens, 1 billed by the fake server
    assert gov.used_tokens == 1
    with pytest.raises(BudgetExceeded, match=f"{kit.var}_BUDGET_TOKENS") as info:
        emb.embed_documents(["x" * 400])
    assert not info.value.retryable and len(server.requests) == 1


def created_at_an_edge(kit: Kit) -> Embedder:
    """``create_embedder`` as an edge calls it: with the root of the environment the test set up,
    choosing ``kit``'s provider."""
    return create_embedder(Settings().replace(load(EmbeddingSettings, provider=kit.name)))


@KITS
@pytest.mark.parametrize("key", [None, "changeme"])
def test_missing_or_placeholder_key_is_a_config_error_on_first_use(
        kit: Kit, key: str | None, server: Srv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_ENV", "production")
    if key:
        monkeypatch.setenv(f"{kit.var}_API_KEY", key)
    monkeypatch.setenv(f"{kit.var}_BASE_URL", kit.base(server))
    emb = created_at_an_edge(kit)  # the key is not read yet
    with pytest.raises(ConfigError, match=f"{kit.var}_API_KEY" + (".*placeholder" if key else " is not set")) as info:
        emb.embed_documents(["a"])
    assert "changeme" not in str(info.value) and server.requests == []
    monkeypatch.setenv("NEWSRAG_ENV", "development")  # placeholders are tolerated while developing
    assert (load(kit.settings).api_key is not None) == bool(key)


@KITS
def test_key_never_appears_in_repr_and_bad_numbers_name_their_variable(
        kit: Kit, server: Srv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{kit.var}_API_KEY", KEY)
    monkeypatch.setenv(f"{kit.var}_BASE_URL", kit.base(server))  # never the real API, even if broken
    settings = load(kit.settings)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == KEY
    assert KEY not in repr(settings) and KEY not in str(settings) and KEY not in settings.model_dump_json()
    monkeypatch.setenv(f"{kit.var}_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match=f"{kit.var}_TIMEOUT") as info:
        created_at_an_edge(kit).embed_documents(["a"])
    assert KEY not in str(info.value)


@KITS
def test_registry_creates_the_provider_from_the_environment(
        kit: Kit, server: Srv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{kit.var}_API_KEY", KEY)
    monkeypatch.setenv(f"{kit.var}_BASE_URL", kit.base(server))
    emb = created_at_an_edge(kit)
    assert isinstance(emb, kit.embedder)
    assert emb.embed_documents(["a", "b"]).shape == (2, kit.native) and server.requests[0].bearer == KEY
    assert emb.governor is emb.governor and emb.governor.requests == 1  # the process-wide one
    emb.close()
    assert emb._client is None
    assert emb.embed_query("again").shape == (kit.native,) and len(server.requests) == 2  # reopened
    emb.close()


@KITS
def test_the_registry_reads_the_account_from_the_root_never_the_process_environment(
        kit: Kit, server: Srv, monkeypatch: pytest.MonkeyPatch) -> None:
    """An Airflow task's root holds the Connection's key; the worker's environment does not."""
    root = Settings({f"{kit.var}_API_KEY": KEY, f"{kit.var}_BASE_URL": kit.base(server),
                     "NEWSRAG_EMBED_PROVIDER": kit.name})
    emb = create_embedder(root)
    assert isinstance(emb, kit.embedder) and emb.embed_query("a").shape == (kit.native,)
    assert server.requests[0].bearer == KEY
    emb.close()
    monkeypatch.setenv(f"{kit.var}_API_KEY", KEY)  # in the process only: the library does not look there
    monkeypatch.setenv(f"{kit.var}_BASE_URL", kit.base(server))
    alone = create_embedder(load(EmbeddingSettings, {}, provider=kit.name))  # no root: the defaults
    with pytest.raises(ConfigError, match=f"{kit.var}_API_KEY is not set"):
        alone.embed_documents(["a"])
    assert len(server.requests) == 1
