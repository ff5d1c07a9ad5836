"""The provider client base (newsrag.providers.base) with a fake SDK: the account settings given to
the constructor (defaults without them, never the environment), the key checked on first use, the
SDK guard, translation of the SDK's errors, retries of retryable errors only, the governor's
accounting, and close()."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from newsrag.core.errors import ConfigError, ProviderError, SetupError
from newsrag.providers.base import Closeable, Connection, ProviderClient
from newsrag.providers.errors import TransientProviderError, error_detail, status_error, timed_out
from newsrag.providers.governor import RateGovernor
from newsrag.providers.retry import RetryPolicy, call_with_retries

pytestmark = pytest.mark.unit

KEY = "fk-test-0123456789abcdef"
SDK = "newsrag_test_fake_sdk"


class FakeSettings(BaseSettings):
    """A provider account read from ``FAKE_*`` (no validator: the base's own check is tested)."""

    model_config = SettingsConfigDict(env_prefix="FAKE_", extra="ignore")

    api_key: SecretStr | None = None
    base_url: str | None = None


class SDKError(Exception):
    """What the fake SDK raises: an HTTP status and a body that may quote the key."""

    def __init__(self, status_code: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status_code}: {body}")
        self.status_code, self.body, self.headers = status_code, body, headers or {}


class Resource:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class FakeClient(ProviderClient[FakeSettings]):
    provider = "fake"
    package = SDK
    key_variable = "FAKE_API_KEY"
    settings_class = FakeSettings
    purpose = "the fake consumer"
    keyless_hint = "or FAKE_BASE_URL for a keyless server"

    def __init__(self, provider_settings: FakeSettings | None = None, *, retries: int = 2,
                 governor: RateGovernor | None = None, keyless: bool = False) -> None:
        self.waits: list[float] = []
        super().__init__(provider_settings, sleep=self.waits.append)
        self.model = "fake-model"
        self.retries, self._governor, self.keyless = retries, governor, keyless
        self.resources: list[Resource] = []

    @property
    def governor(self) -> RateGovernor | None:
        return self._governor

    def _resolve_connection(self) -> Connection:
        ps = self.provider_settings
        return Connection(ps.base_url, ps.api_key, self.key_variable, 5.0, keyless=self.keyless)

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retries)

    def _connect(self, sdk: ModuleType, connection: Connection, key: str | None) -> tuple[Any, Closeable]:
        self.resources.append(Resource())
        return SimpleNamespace(sdk=sdk, key=key, base_url=connection.base_url), self.resources[-1]

    def _translate(self, exc: Exception) -> ProviderError | None:
        if isinstance(exc, SDKError):
            return status_error(self.provider, self.model, exc.status_code, headers=exc.headers,
                                detail=error_detail(exc.body, self.secret()), key_variable=self.key_variable)
        if isinstance(exc, TimeoutError):
            return timed_out(self.provider, self.model, self.connection.timeout)
        return None


@pytest.fixture(autouse=True)
def _fake_sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name in ("FAKE_API_KEY", "FAKE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    module = ModuleType(SDK)
    monkeypatch.setitem(sys.modules, SDK, module)
    yield module


def account(key: str | None = KEY) -> FakeSettings:
    return FakeSettings(api_key=SecretStr(key) if key is not None else None, base_url="http://127.0.0.1:1")


def replies(*outcomes: Any) -> Callable[[Any], str]:
    """A request that raises or returns ``outcomes`` in turn, counting its calls."""
    pending = list(outcomes)

    def send(client: Any) -> str:
        send.calls += 1  # type: ignore[attr-defined]
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return str(outcome)

    send.calls = 0  # type: ignore[attr-defined]
    return send


# -- settings, key, SDK ------------------------------------------------------------------------

def test_the_provider_settings_come_through_the_constructor(monkeypatch: pytest.MonkeyPatch,
                                                            _fake_sdk: ModuleType) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "fk-from-the-environment")  # an edge's business, never the base's
    client = FakeClient(FakeSettings(api_key=SecretStr(KEY), base_url="http://127.0.0.1:9"))
    assert client.resources == []  # the SDK client is created on first use, not at construction
    sdk_client = client.client
    assert (sdk_client.key, sdk_client.base_url, sdk_client.sdk) == (KEY, "http://127.0.0.1:9", _fake_sdk)
    assert client.client is sdk_client and client.secret() == KEY


def test_without_provider_settings_the_defaults_apply_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_API_KEY", KEY)
    monkeypatch.setenv("FAKE_BASE_URL", "http://127.0.0.1:9")
    client = FakeClient()
    assert (client.provider_settings.api_key, client.provider_settings.base_url) == (None, None)
    with pytest.raises(ConfigError, match="FAKE_API_KEY is not set"):
        _ = client.client
    assert client.secret() is None


def test_a_missing_key_is_a_config_error_naming_the_variable_unless_keyless() -> None:
    with pytest.raises(ConfigError) as info:
        _ = FakeClient(account(None)).client
    assert str(info.value) == ("FAKE_API_KEY is not set; the fake consumer needs an API key "
                               "(or FAKE_BASE_URL for a keyless server)")
    assert FakeClient(account(None), keyless=True).client.key is None


def test_a_placeholder_key_is_refused_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAG_ENV", "production")
    with pytest.raises(ConfigError, match="FAKE_API_KEY holds a placeholder") as info:
        _ = FakeClient(account("changeme")).client
    assert "changeme" not in str(info.value)
    monkeypatch.setenv("NEWSRAG_ENV", "development")
    assert FakeClient(account("changeme")).client.key == "changeme"


def test_a_missing_sdk_is_a_setup_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, SDK, None)  # as if not installed: importing it raises ImportError
    client = FakeClient(account())
    with pytest.raises(SetupError) as info:
        client.call(replies("never sent"))
    assert str(info.value) == f"the {SDK} package is not installed; pip install 'newsrag[{SDK}]'"
    assert isinstance(info.value.__cause__, ImportError) and client.resources == []


# -- translation -------------------------------------------------------------------------------

def test_sdk_errors_become_provider_errors_without_the_key_or_the_sdk_text() -> None:
    client = FakeClient(account())
    with pytest.raises(ProviderError) as info:
        client.call(replies(SDKError(400, {"error": {"message": f"bad input for key {KEY}"}})))
    err = info.value
    assert str(err) == "fake: fake-model: HTTP 400: bad input for key ***" and not err.retryable
    assert err.__cause__ is None and err.__suppress_context__  # the SDK's exception is not chained
    with pytest.raises(ProviderError) as info:
        client.call(replies(SDKError(401, f"Incorrect API key {KEY}")))
    assert str(info.value) == "fake: fake-model: HTTP 401 authentication failed; check FAKE_API_KEY"
    with pytest.raises(TransientProviderError) as transient:
        client.call(replies(SDKError(429, "busy", {"Retry-After": "7"})))
    assert transient.value.retryable and transient.value.retry_after == 7.0


def test_an_exception_the_provider_does_not_know_is_raised_unchanged() -> None:
    with pytest.raises(KeyError, match="ours"):
        FakeClient(account()).call(replies(KeyError("ours")))


def test_translating_covers_a_stream_read_in_a_loop() -> None:
    client = FakeClient(account())

    def pieces() -> Iterator[str]:
        with client.translating():
            yield "first"
            raise TimeoutError

    stream = pieces()
    assert next(stream) == "first"
    with pytest.raises(TransientProviderError, match="fake-model: request timed out after 5s"):
        next(stream)


# -- retries -----------------------------------------------------------------------------------

def test_only_retryable_errors_are_retried() -> None:
    client = FakeClient(account(), retries=3)
    flaky = replies(SDKError(503, "down"), TimeoutError(), "ok")
    assert client.retrying(lambda: client.call(flaky)) == "ok"
    assert flaky.calls == 3 and len(client.waits) == 2  # type: ignore[attr-defined]

    for fatal in (SDKError(400, "no"), SDKError(401, "no"), KeyError("ours")):
        once = replies(fatal, "never")
        with pytest.raises((ProviderError, KeyError)):
            client.retrying(lambda once=once: client.call(once))  # type: ignore[misc]
        assert once.calls == 1  # type: ignore[attr-defined]
    assert len(client.waits) == 2


def test_retries_run_out_as_a_retryable_error() -> None:
    client = FakeClient(account(), retries=2)
    down = replies(*[SDKError(502, "bad gateway")] * 3)
    with pytest.raises(ProviderError, match="HTTP 502") as info:
        client.retrying(lambda: client.call(down))
    assert info.value.retryable and down.calls == 3 and len(client.waits) == 2  # type: ignore[attr-defined]


def test_a_retry_after_over_the_longest_wait_is_cut_or_ends_the_retries() -> None:
    def busy() -> None:
        raise TransientProviderError("fake", "fake-model: HTTP 429", retry_after=60)

    waits: list[float] = []
    with pytest.raises(TransientProviderError):
        call_with_retries(busy, max_retries=1, sleep=waits.append, max_wait=5)
    assert waits == [5]  # cut to max_wait, then retried
    with pytest.raises(ProviderError) as info:
        RetryPolicy(3, max_wait=5, give_up_over_max_wait=True).run(busy, waits.append)
    assert waits == [5] and info.value.retryable and not isinstance(info.value, TransientProviderError)
    assert str(info.value) == "fake: fake-model: HTTP 429 (Retry-After 60s is over the 5s allowed)"


# -- the governor ------------------------------------------------------------------------------

def test_each_request_takes_its_tokens_and_a_rejected_one_gives_them_back() -> None:
    governor = RateGovernor("fake", 10**6, 10**9)
    client = FakeClient(account(), governor=governor)
    assert client.call(replies("ok"), tokens=40) == "ok"
    assert (governor.requests, governor.used_tokens) == (1, 40)
    with pytest.raises(ProviderError):
        client.call(replies(SDKError(400, "too long")), tokens=25)
    assert (governor.requests, governor.used_tokens) == (2, 40)  # not billed


def test_a_configuration_error_is_raised_before_the_governor_counts() -> None:
    governor = RateGovernor("fake", 10**6, 10**9)
    with pytest.raises(ConfigError):
        FakeClient(account(None), governor=governor).call(replies("never"), tokens=10)
    assert (governor.requests, governor.used_tokens) == (0, 0)


# -- close -------------------------------------------------------------------------------------

def test_close_is_idempotent_and_the_client_is_created_again() -> None:
    client = FakeClient(account())
    first = client.client
    client.close()
    client.close()
    assert [r.closed for r in client.resources] == [1]
    assert client.client is not first and len(client.resources) == 2
    FakeClient(account()).close()  # never opened: nothing to close


def test_with_closes_the_client() -> None:
    with FakeClient(account()) as client:
        assert client.call(replies("ok")) == "ok"
    assert [r.closed for r in client.resources] == [1]
