"""Before a prompt release evaluates anything: is its generator (``NEWSRAG_RELEASE_GENERATOR``) an
LLM generator that is configured and answers?

A release without a working LLM would answer every question with an error, and the regression gate
would read that as a bad candidate ("28 of 28 questions failed") and reject it. That is a
configuration problem, not a quality verdict, so the prompt_release DAG checks first
(:func:`check_generator`) and fails at once with :class:`GeneratorUnavailable`, which names
``NEWSRAG_RELEASE_GENERATOR``, the settings to set and the URL it tried (credentials removed).

The probe is one ``GET`` of the provider's model list with the generator's own key, no retries and
a short timeout: a connection failure, a timeout, a refused key (401/403) or a server error (5xx)
fails the check; any other answer (200, or a 404 from a server without that route) shows that the
server is there and takes the key. Generators from plugins are created (their configuration is
checked) but not probed: newsrag does not know their endpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from newsrag.core.errors import ConfigError, SetupError
from newsrag.core.settings import Settings
from newsrag.prompts.release import ReleaseSettings

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 10.0  # seconds; the evaluation itself uses the generator's own timeout
VARIABLE = "NEWSRAG_RELEASE_GENERATOR"
SETTINGS = {
    "openai": "OPENAI_API_KEY for api.openai.com, or NEWSRAG_OPENAI_CHAT_BASE_URL for an OpenAI-compatible "
              "server such as Ollama, vLLM or LM Studio (with NEWSRAG_OPENAI_CHAT_API_KEY if it needs a key, "
              "and NEWSRAG_OPENAI_CHAT_MODEL)",
    "cohere": "COHERE_API_KEY (COHERE_BASE_URL for a proxy, NEWSRAG_COHERE_CHAT_MODEL)",
}


class GeneratorUnavailable(ConfigError):
    """The release's generator is unknown, not an LLM, not configured or unreachable; nothing was
    evaluated and nothing was decided."""


@dataclass(frozen=True)
class Endpoint:
    url: str  # the base URL the generator sends its requests to
    probe: str  # the URL the check reads
    key: str | None


def check_generator(name: str | None = None, timeout: float = PROBE_TIMEOUT,
                    settings: Settings | None = None) -> dict[str, Any]:
    """The release generator's name, model and URL once it is known to answer; raises
    :class:`GeneratorUnavailable` otherwise. ``settings``: the root an edge built (None: the defaults)."""
    settings = settings or Settings({})
    name = name or settings.get(ReleaseSettings).generator
    generator = _create(name, settings)
    try:
        endpoint = _endpoint(name, generator)
        if endpoint is not None:
            _probe(name, endpoint, timeout, settings)
    finally:
        if callable(close := getattr(generator, "close", None)):
            close()
    url = _shown(endpoint.url, endpoint.key, settings) if endpoint else None
    log.info("release generator %s (model %s) answers at %s", name, getattr(generator, "model", "?"), url)
    return {"generator": name, "model": getattr(generator, "model", None), "url": url}


def _create(name: str, settings: Settings) -> Any:
    from newsrag.retrieval.generators import create_generator

    if name == "extractive":
        raise GeneratorUnavailable(f"{VARIABLE}=extractive: the extractive generator does not use prompt "
                                   "templates, so a release cannot compare two versions; set "
                                   f"{VARIABLE} to an LLM generator: openai ({SETTINGS['openai']}) or "
                                   f"cohere ({SETTINGS['cohere']})")
    try:
        return create_generator(name, settings=settings)
    except ConfigError as exc:  # an unknown name, or a setting that does not validate
        raise GeneratorUnavailable(f"{VARIABLE}={name}: {exc}") from None


def _endpoint(name: str, generator: Any) -> Endpoint | None:
    """Where the built-in LLM generators send their requests (None for a plugin's generator)."""
    if name not in SETTINGS:
        log.warning("%s=%s: a plugin's generator, created but not probed (its endpoint is unknown)", VARIABLE, name)
        return None
    try:
        client = generator.client  # ConfigError without a key/base URL, SetupError without the SDK
    except (ConfigError, SetupError) as exc:
        raise GeneratorUnavailable(f"{VARIABLE}={name}, but the {name} generator is not configured: {exc}; "
                                   f"set {SETTINGS[name]}") from None
    if name == "openai":
        base = str(client.base_url).rstrip("/")
        key = client.api_key if client.api_key != "unused" else None
        return Endpoint(base, f"{base}/models", key)
    from newsrag.embeddings.cohere import DEFAULT_BASE_URL

    settings = generator.provider_settings
    base = (settings.base_url or DEFAULT_BASE_URL).rstrip("/")
    return Endpoint(base, f"{base}/v1/models", settings.api_key.get_secret_value() if settings.api_key else None)


def _probe(name: str, endpoint: Endpoint, timeout: float, settings: Settings) -> None:
    headers = {"Authorization": f"Bearer {endpoint.key}"} if endpoint.key else {}
    where = (f"{VARIABLE}={name}, but the {name} generator at {_shown(endpoint.url, endpoint.key, settings)} "
             f"(GET {_shown(endpoint.probe, endpoint.key, settings)})")
    try:
        status = httpx.get(endpoint.probe, headers=headers, timeout=timeout, follow_redirects=True).status_code
    except httpx.TimeoutException:
        raise GeneratorUnavailable(f"{where} did not answer within {timeout:g} s; start it, or set "
                                   f"{SETTINGS[name]}") from None
    except httpx.HTTPError as exc:
        reason = _shown(str(exc) or type(exc).__name__, endpoint.key, settings)
        raise GeneratorUnavailable(f"{where} is unreachable ({reason}); start it, or set {SETTINGS[name]}") from None
    if status in (401, 403):
        raise GeneratorUnavailable(f"{where} refused the key (HTTP {status}); set {SETTINGS[name]}")
    if status >= 500:
        raise GeneratorUnavailable(f"{where} answered HTTP {status}; try again when it is up, or set "
                                   f"{SETTINGS[name]}")


def _shown(text: str, key: str | None, settings: Settings) -> str:
    """``text`` without the key, URL credentials or any other secret of the root's environment."""
    from newsrag.infra.redaction import redact_text

    return redact_text(text, [key], settings.environ)
