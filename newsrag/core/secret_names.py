"""Which names hold secrets: the one answer every redaction and masking in newsrag asks.

A name (an environment variable, a settings field, a JSON key, an Airflow setting) holds a secret
when it mentions a password or a secret anywhere, or ends in a key, a token, an authorization, a
bearer or a webhook URL: ``OPENAI_API_KEY``, ``NEWSRAG_APP_ADMIN_KEYS``, ``AIRFLOW__API_AUTH__JWT_SECRET``,
``Authorization``, ``accessToken``, ``NEWSRAG_NOTIFY_SLACK_WEBHOOK_URL``. A count such as
``max_tokens`` is not a secret, nor is a bare ``key``.

This is the union of the four rules newsrag had (notification redaction, the Airflow settings
mask, the evaluation report's scrub and the settings error messages), so each of them now hides at
least what it hid before. It lives in core because the settings use it and core imports nothing
above itself; :mod:`newsrag.infra.redaction` builds the redaction of text on it.
"""

from __future__ import annotations

import re

# On the normalized name (lower case, words joined by "_"): anywhere, or at the end.
_SECRET = re.compile(r"password|passwd|secret|(authorization|bearer|token|webhook_url|apikeys?|_keys?)$")
# A URL may carry ``user:password@``: a settings error never echoes what was given for one.
_URL_WORD = re.compile(r"(^|_)(url|urls|uri|dsn)(_|$)")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def normalized(name: str) -> str:
    """``name`` in lower case with its words joined by ``_`` (``X-Api-Key``, ``apiKey`` -> ``..._api_key``)."""
    return _SEPARATORS.sub("_", _CAMEL_BOUNDARY.sub("_", name).lower())


def is_secret_name(name: str) -> bool:
    """Whether a value stored under ``name`` is a secret (never shown, logged or sent)."""
    return bool(_SECRET.search(normalized(name)))


def may_hold_secret(name: str) -> bool:
    """:func:`is_secret_name`, or a URL (which may carry credentials): its value is never echoed."""
    return is_secret_name(name) or bool(_URL_WORD.search(normalized(name)))
