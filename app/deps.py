"""Dependencies: the services container, bearer-key auth and rate limiting.

Keys are compared as bytes, so any header byte is a wrong key (401), never an error. The rate limit
applies per client address when auth is off (a made-up token changes nothing) and per key
fingerprint when it is on; wrong keys are throttled per client address before any key is checked.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from app.services import RateLimiter, Services
from retrieval.types import SearchFilters

bearer = HTTPBearer(auto_error=False)


def services(request: Request) -> Services:
    return request.app.state.services


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
ServicesDep = Annotated[Services, Depends(services)]


def token_bytes(token: str) -> bytes:
    """The bytes the client sent: Starlette decodes header values as latin-1, so encoding back
    restores them exactly; a str from elsewhere (beyond latin-1) is taken as UTF-8, surrogates kept."""
    try:
        return token.encode("latin-1")
    except UnicodeEncodeError:
        return token.encode("utf-8", "surrogatepass")


def _matches(token: str, keys: Sequence[SecretStr]) -> bool:
    sent = token_bytes(token)
    found = False
    for key in keys:  # every key is compared, so the time taken does not say which one matched
        found |= hmac.compare_digest(sent, key.get_secret_value().encode("utf-8", "surrogatepass"))
    return found


def fingerprint(token: str) -> str:
    """A stable id for an API key that holds none of its characters: 12 hex digits of a SHA-256.
    Keys are secrets (placeholders are refused), so the hash cannot be walked back to the key."""
    return hashlib.sha256(b"newsrag-api-key:" + token_bytes(token)).hexdigest()[:12]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def _refuse_when_empty(limiter: RateLimiter, key: str, message: str) -> None:
    if limiter.exhausted(key):
        raise HTTPException(429, message, headers={"Retry-After": str(limiter.retry_after(key))})


def authenticate(request: Request, creds: HTTPAuthorizationCredentials | None, svc: Services) -> str:
    """The limit key of a valid API key (``key:<fingerprint>``); 401 for a missing or wrong key, and
    429 for an address that sent too many wrong keys, before its key is even looked at."""
    address = client_address(request)
    _refuse_when_empty(svc.auth_failures, address, "too many failed authentication attempts; slow down")
    token = creds.credentials if creds else None
    if not token:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
    if not _matches(token, [*svc.settings.api_keys, *svc.settings.admin_keys]):
        svc.auth_failures.allow(address)  # spends one of the address's failures
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return f"key:{fingerprint(token)}"


def client_key(request: Request, creds: Credentials, svc: ServicesDep) -> str:
    """Authenticate (when keys are configured) and rate-limit. Returns the key the limit applies to:
    the key's fingerprint with auth on, else the client address (whatever token was sent)."""
    if svc.settings.auth_enabled:
        key = authenticate(request, creds, svc)
    else:
        key = f"ip:{client_address(request)}"
    if not svc.limiter.allow(key):
        raise HTTPException(429, "rate limit exceeded; slow down",
                            headers={"Retry-After": str(svc.limiter.retry_after(key))})
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


def admin_key(request: Request, creds: Credentials, svc: ServicesDep) -> str:
    """Admin routes: when auth is on, only NEWSRAG_APP_ADMIN_KEYS may call them."""
    key = client_key(request, creds, svc)
    if svc.settings.auth_enabled and not (creds and _matches(creds.credentials, svc.settings.admin_keys)):
        raise HTTPException(403, "this route needs an admin API key")
    return key


def metrics_key(request: Request, creds: Credentials, svc: ServicesDep) -> str | None:
    """/metrics: open when auth is off; with auth on (always in production) it needs an admin key
    when admin keys are configured, else any API key."""
    if not svc.settings.auth_enabled:
        return None
    if svc.settings.admin_keys:
        return admin_key(request, creds, svc)
    return client_key(request, creds, svc)
