"""Client errors become the library's: a Weaviate gone mid-call is retryable, a refusal is not (#11, 6)."""

from __future__ import annotations

import pytest
import weaviate.exceptions as wex

from newsrag.core.errors import StoreError, StoreUnavailable
from newsrag.store.weaviate_client import translate_error

pytestmark = pytest.mark.unit

GONE = [
    wex.WeaviateRetryError("<_InactiveRpcError of RPC that terminated with: status = StatusCode.UNAVAILABLE>", 5),
    wex.WeaviateConnectionError("Connection to Weaviate failed."),
    wex.WeaviateTimeoutError("The request to Weaviate timed out."),
    wex.WeaviateQueryError("WeaviateRetryError: failed to connect to all addresses; Connection refused",
                           "GRPC search"),
    wex.WeaviateBatchError("Socket closed"),
    wex.WeaviateDeleteManyError("[UNAVAILABLE] failed to connect to all addresses"),
]
REFUSED = [
    wex.WeaviateQueryError("could not find class NewsChunk in schema", "GRPC search"),
    wex.WeaviateBatchError("invalid property 'foo'"),
    wex.WeaviateInvalidInputError("Argument 'limit' must be int"),
]


@pytest.mark.parametrize("exc", GONE, ids=lambda e: type(e).__name__)
def test_weaviate_gone_is_retryable_store_unavailable(exc: Exception) -> None:
    err = translate_error(exc, "NewsChunk")
    assert isinstance(err, StoreUnavailable) and err.retryable
    assert "Weaviate unavailable (NewsChunk)" in str(err)


@pytest.mark.parametrize("exc", REFUSED, ids=lambda e: type(e).__name__)
def test_a_refusal_is_a_store_error_not_retried(exc: Exception) -> None:
    err = translate_error(exc, "NewsChunk")
    assert type(err) is StoreError and not err.retryable
    assert "refused an operation on NewsChunk" in str(err)


def test_a_channel_closed_under_a_call_in_flight_is_store_unavailable() -> None:
    # another request of the process closed the client to reconnect while this one was in flight
    from newsrag.core.settings import Settings, WeaviateSettings
    from newsrag.store.weaviate import WeaviateStore

    store = WeaviateStore(Settings({}).get(WeaviateSettings), collection="Closed")  # no connection is made

    def closed() -> None:
        raise ValueError("Cannot invoke RPC on closed channel!")

    def bug() -> None:
        raise ValueError("invalid literal for int()")

    with pytest.raises(StoreUnavailable, match="connection was closed during the call") as err:
        store._call(closed)
    assert err.value.retry_after == 1
    with pytest.raises(ValueError, match="invalid literal"):  # any other ValueError is a bug, not an outage
        store._call(bug)
