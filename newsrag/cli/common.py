"""What every command group shares: the command's root settings and error translation (the edge
where the process environment becomes settings, and library errors become exits)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from newsrag.core.errors import ConfigError, NewsragError
from newsrag.core.settings import Settings

err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def command_settings(settings: Settings | None = None) -> Settings:
    """The one place the CLI builds the root settings: ``settings`` when the command already has
    them, else the process environment read now (the CLI is an edge). A command calls this once, at
    its start, and hands the result to everything it runs; a view called with none builds its own."""
    return settings if settings is not None else Settings()


def friendly(fn: F) -> F:
    """Translate library errors into a one-line message; config errors exit 2, others 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            err.print(f"[bold red]config error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(2) from None
        except NewsragError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]
