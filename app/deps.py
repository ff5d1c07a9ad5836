"""Dependencies: the services container, bearer-key auth and per-key rate limiting."""

from __future__ import annotations

import hmac
from datetime import datetime

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.services import Services
from retrieval.types import SearchFilters

bearer = HTTPBearer(auto_error=False)


def services(request: Request) -> Services:
    return request.app.state.services


def _matches(token: str, keys: list[object]) -> bool:
    return any(hmac.compare_digest(token, k.get_secret_value()) for k in keys)  # type: ignore[attr-defined]


def client_key(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer),
               svc: Services = Depends(services)) -> str:
    """Authenticate (when keys are configured) and rate-limit. Returns the key the limit applies to."""
    settings = svc.settings
    token = creds.credentials if creds else None
    if settings.auth_enabled:
        if not token:
            raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})
        if not _matches(token, [*settings.api_keys, *settings.admin_keys]):
            raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    key = f"key:{token[-6:]}" if token else f"ip:{request.client.host if request.client else '?'}"
    if not svc.limiter.allow(key):
        raise HTTPException(429, "rate limit exceeded; slow down", headers={"Retry-After": "5"})
    return key


def filters_from(sources: list[str] | None, tags: list[str] | None, since: datetime | None,
                 until: datetime | None) -> SearchFilters | None:
    if since and until and since >= until:
        raise HTTPException(400, "'since' must be before 'until'")
    f = SearchFilters(source_ids=tuple(sources or ()), tags=tuple(tags or ()), published_after=_utc(since),
                      published_before=_utc(until))
    return None if f.is_empty() else f


def _utc(value: datetime | None) -> datetime | None:
    from datetime import UTC

    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def admin_key(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer),
              svc: Services = Depends(services)) -> str:
    """Admin routes: when auth is on, only NEWSRAG_APP_ADMIN_KEYS may call them."""
    key = client_key(request, creds, svc)
    if svc.settings.auth_enabled and not (creds and _matches(creds.credentials, list(svc.settings.admin_keys))):
        raise HTTPException(403, "this route needs an admin API key")
    return key
