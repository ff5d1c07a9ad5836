"""Redaction: secrets out of every text that leaves the process (messages, logs, errors, reports).

Three tools, used everywhere from the CLI to the Airflow tasks:

- :func:`redact` replaces known secret values (as given and URL-encoded) by ``***``;
- :func:`redact_text` does that with the secrets of the environment it is handed too (every
  variable whose name :func:`~newsrag.core.secret_names.is_secret_name` says holds one: an edge
  passes its root settings' ``environ``; the library never reads the process environment) and
  hides any ``user:password@`` of a URL;
- :func:`display_url` shows a connection string with its password (not its user) masked.

Which names hold secrets is decided in one place, :mod:`newsrag.core.secret_names` (re-exported here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from pydantic import SecretStr

from newsrag.core.secret_names import is_secret_name, may_hold_secret

__all__ = ["MASK", "display_url", "environment_secrets", "is_secret_name", "may_hold_secret", "redact",
           "redact_text"]

MASK = "***"
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)
_MIN_SECRET_CHARS = 4  # shorter values ("1", "on") would mask innocent text


def redact(text: str, secrets: Iterable[str | SecretStr | None]) -> str:
    """``text`` with every occurrence of every secret (as is and URL-encoded) replaced by ``***``."""
    values: set[str] = set()
    for s in secrets:
        raw = s.get_secret_value() if isinstance(s, SecretStr) else s
        if raw:
            values |= {raw, quote(raw, safe=""), quote(raw)}
    for value in sorted(values, key=len, reverse=True):  # longest first: no partial leftovers
        text = text.replace(value, MASK)
    return text


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """Values of ``environ``'s variables whose names hold secrets (:func:`is_secret_name`;
    comma-separated key lists split): a task's error text may quote one of them, and a
    notification must not. ``environ`` is what the edge captured (``Settings.environ``)."""
    values = []
    for name, value in environ.items():
        if value and is_secret_name(name):
            values += [v.strip() for v in value.split(",") if len(v.strip()) >= _MIN_SECRET_CHARS]
    return values


def redact_text(text: str, secrets: Iterable[str | SecretStr | None] = (),
                environ: Mapping[str, str] | None = None) -> str:
    """:func:`redact` with ``environ``'s secrets too (:func:`environment_secrets`; the edge's
    ``Settings.environ``), and any ``user:password@`` in a URL."""
    hidden = [*secrets, *(environment_secrets(environ) if environ is not None else [])]
    return _URL_USERINFO.sub(r"\g<scheme>***@", redact(text, hidden))


def display_url(url: str) -> str:
    """``url`` with any password (``user:pw@`` or ``?password=``) replaced by ``***``."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", url))
