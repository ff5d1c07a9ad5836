"""Before an ingestion run: can the store be reached, and does it hold the collection?

A run whose sources are all unchanged never writes, so without this check a Weaviate outage would
stay invisible until a consumer (the evaluation) fails. :func:`check_store` makes one connection
and two cheap calls (the collection's existence, its object count). An unreachable store raises
:class:`~newsrag.core.errors.StoreUnavailable` (retryable) naming the URL it tried; a missing
collection is not an error, because the run creates it, but the result says so, to be logged.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from newsrag.core.errors import StoreUnavailable
from newsrag.core.settings import Settings, WeaviateSettings, defaults
from newsrag.store.server import LocalWeaviate

if TYPE_CHECKING:
    from newsrag.store.weaviate import WeaviateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreCheck:
    """What the check found: where the store is, whether the collection exists, its object count
    and generation (``WeaviateStore.generation``: new whenever the collection is re-created)."""

    url: str
    collection: str
    exists: bool
    objects: int
    generation: str | None = None

    def message(self) -> str:
        if not self.exists:
            return (f"collection {self.collection} does not exist in Weaviate at {self.url}: this run creates "
                    f"it. On a first run that is expected; if it held articles before, it was deleted or "
                    f"lost: this run re-creates it and reads every source in full (the ingest state "
                    f"belongs to the collection it was made for)")
        if self.objects == 0:
            return f"collection {self.collection} in Weaviate at {self.url} exists but holds no objects"
        return (f"Weaviate at {self.url} is reachable; collection {self.collection} (generation "
                f"{self.generation or 'unknown'}) holds {self.objects} objects")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_url(settings: WeaviateSettings | None = None, local: LocalWeaviate | None = None) -> str:
    """The HTTP URL the store connects to (``WEAVIATE_URL``, else the ``local`` server's), without
    credentials; ``the local server (not started)`` when there is none. None: the defaults."""
    settings = settings or defaults(WeaviateSettings)
    if settings.url:
        return _without_credentials(settings.url)
    state = (local or LocalWeaviate.from_settings()).read_state()
    return state.http_url if state else "the local server (not started: `newsrag weaviate start`)"


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def check_store(store: WeaviateStore | None = None, *, settings: Settings | None = None) -> StoreCheck:
    """Connect to the store and look at its collection (never creates it). ``store``: an open
    :class:`newsrag.store.weaviate.WeaviateStore` (default: one from ``settings``, the root, closed
    afterwards; None: the defaults).
    Raises StoreUnavailable naming the URL when Weaviate cannot be reached; a refusal (wrong
    credentials) propagates as the store's StoreError."""
    from newsrag.store.weaviate import WeaviateStore

    own = store is None
    store = store or WeaviateStore(settings or Settings({}))
    url = store_url(store.settings, store.local)
    try:
        exists = store.exists()
        check = StoreCheck(url, store.name, exists, store.count() if exists else 0,
                           store.generation() if exists else None)
    except StoreUnavailable as exc:
        reason = str(exc).removeprefix(f"cannot reach Weaviate at {url}: ").rstrip(" .")
        raise StoreUnavailable(f"cannot reach Weaviate at {url} (collection {store.name}): {reason}. Start it, "
                               f"or point WEAVIATE_URL (in Airflow: the weaviate_default Connection) at it") from None
    finally:
        if own:
            store.close()
    if exists and check.objects:
        log.info("%s", check.message())
    else:
        log.warning("%s", check.message())
    return check
