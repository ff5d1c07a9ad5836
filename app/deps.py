"""Dependencies: the services container, bearer-key auth and rate limiting.

Keys are compared as bytes, so any header byte is a wrong key (401), never an error. The rate limit
applies per client address when auth is off (a made-up token changes nothing) and per key
fingerprint when it is on; wrong keys are throttled per client address before any key is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from newsrag.app.services import RateLimiter, Services
from newsrag.core.records import SearchFilters
from newsrag.ingest.registry import SOURCE_ID
from newsrag.retrieval.dates import DateInput, InvalidDate, as_of_point, date_range, parse_point

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


def filters_from(sources: Sequence[str] | None, tags: Sequence[str] | None, since: DateInput,
                 until: DateInput) -> SearchFilters | None:
    """The request's filters: comma lists split, date bounds by the one rule of :mod:`newsrag.retrieval.dates`
    (a date-only ``until`` covers its day). 422 for a range that holds no instant (naming ``since``) or
    a source id that cannot exist, so a misread filter is never an empty result."""
    source_ids, tag_values = split_values(sources), split_values(tags)
    for source_id in source_ids:
        if not re.fullmatch(SOURCE_ID, source_id):
            raise HTTPException(422, f"source: {source_id[:80]!r} is not a source id (lowercase letters, digits, "
                                     "'.', '_' and '-'; separate several with commas or repeat the parameter)")
    try:
        after, before = date_range(since, until)
    except InvalidDate as exc:
        raise HTTPException(422, f"since: {exc}") from None
    f = SearchFilters(source_ids=source_ids, tags=tag_values, published_after=after, published_before=before)
    return None if f.is_empty() else f


def split_values(values: Sequence[str] | None) -> tuple[str, ...]:
    """``["a,b", " c "]`` -> ``("a", "b", "c")``: a comma list and a repeated parameter mean the same;
    blanks are dropped, the first of a duplicate kept."""
    parts = (part.strip() for value in values or () for part in value.split(","))
    return tuple(dict.fromkeys(p for p in parts if p))


def check_date(value: str | None) -> str | None:
    """A date parameter's validator: an unreadable one is a 422 (its location names the parameter).
    The string itself goes on, so a date-only value stays a date (its bound depends on the side)."""
    if value is not None and value.strip():
        parse_point(value)  # raises InvalidDate, a ValueError
    return value


def check_as_of(value: str | None) -> str | None:
    """An ``as_of`` parameter's validator: unreadable or in the future (beyond the clock skew) is a
    422 naming the parameter. The string goes on; :func:`as_of_from` resolves it when answering."""
    as_of_point(value, datetime.now(UTC), name="")  # raises InvalidDate, a ValueError; loc names it
    return value


def as_of_from(value: str | None) -> datetime | None:
    """The request's (validated) ``as_of`` in UTC, against the clock read now; None: the library's now."""
    try:
        return as_of_point(value, datetime.now(UTC))
    except InvalidDate as exc:
        raise HTTPException(422, str(exc)) from None


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
