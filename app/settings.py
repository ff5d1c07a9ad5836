"""App settings (``NEWSRAG_APP_*``), and the root settings the app runs on (:func:`app_root`: the app is
an edge, it reads the process environment once). API keys are secrets: required when
``NEWSRAG_ENV=production``."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from newsrag.core.settings import Settings, check_secret, current_environment


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSRAG_APP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)  # comma-separated
    admin_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(60, ge=0)  # per API key (or client address); 0 disables
    auth_failures_per_minute: int = Field(10, ge=0)  # wrong keys per client address before a 429; 0 disables
    max_body_bytes: int = Field(1_048_576, ge=1024)  # larger request bodies get a 413
    max_question_chars: int = Field(2000, ge=10)
    generator: str = "extractive"
    model_name: str = "newsrag"  # the id /v1/models advertises
    feedback_db: str | None = None  # default: $NEWSRAG_HOME/feedback.sqlite
    prompt_registry: str | None = None  # sqlite path or postgresql:// URL; default $NEWSRAG_HOME/prompt-registry.sqlite
    prompt_name: str = "news-answer"
    prompt_ttl_seconds: float = Field(5.0, ge=0)  # a promotion reaches the app within this time

    @field_validator("api_keys", "admin_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: object) -> object:
        return [k.strip() for k in v.split(",") if k.strip()] if isinstance(v, str) else v

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: object) -> object:
        return [o.strip() for o in v.split(",") if o.strip()] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _keys_in_production(self) -> AppSettings:
        for key in [*self.api_keys, *self.admin_keys]:
            check_secret(key, "NEWSRAG_APP_API_KEYS")
        if current_environment() == "production" and not self.api_keys:
            raise ValueError("NEWSRAG_APP_API_KEYS must be set when NEWSRAG_ENV=production")
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)


def app_root(settings: Settings | AppSettings | None = None) -> Settings:
    """The root settings the app runs on: ``settings`` when it is the root; else the process
    environment, read once here (the app is an edge), with ``settings`` as its AppSettings when
    given (how callers configured the app before the root existed)."""
    if isinstance(settings, Settings):
        return settings
    root = Settings()
    return root if settings is None else root.replace(settings)
