"""``newsrag prompts …``: inspect and change the prompt registry from the shell."""

from __future__ import annotations

import difflib
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from newsrag.cli.common import command_settings, friendly
from newsrag.core.errors import ConfigError
from newsrag.core.settings import Settings

prompts_app = typer.Typer(no_args_is_help=True, help="Versioned prompt templates: list, validate, promote, roll back, A/B.")
out = Console(soft_wrap=True)


def _registry(settings: Settings | None = None) -> Any:
    """The registry this command's settings name (``NEWSRAG_RELEASE_REGISTRY``, ``NEWSRAG_HOME``),
    after a deploy of the shipped templates (what the prompts_deploy DAG does): a new registry gets
    the newest shipped version active, so every command works on a fresh install."""
    from newsrag.prompts.release import open_registry

    reg = open_registry(command_settings(settings))
    reg.deploy(author="cli")
    return reg


def _validate_once(reg: Any, name: str, version: str) -> None:
    """A version never validated is validated now (recorded, its problems printed), so promote and
    ab need no separate validate step; a version that failed stays refused."""
    if reg.validation(name, version) is None:
        for p in reg.validate(name, version, who="cli"):
            out.print(f"[red]✗[/] {p}", highlight=False)


def run(fn: Any) -> Any:
    return friendly(fn)


@prompts_app.command("list")
@run
def list_() -> None:
    """Every template with its versions, the active one and any A/B split."""
    reg = _registry()
    table = Table("name", "versions", "active", "canary", "weight")
    for name in reg.names():
        a = reg.active(name)
        table.add_row(name, ", ".join(reg.versions(name)), a.active or "-", a.canary or "-", f"{a.canary_weight:.2f}")
    out.print(table)


@prompts_app.command("show")
@run
def show(name: str, version: str = typer.Argument(None)) -> None:
    """Print a version (default: the active one)."""
    reg = _registry()
    version = version or reg.active(name).active
    if version is None:
        raise ConfigError(f"{name} has no active version; name one of {', '.join(reg.versions(name))} "
                          f"(show {name} VERSION) or promote one")
    t = reg.template(name, version)
    out.print(f"[bold]{t.ref}[/] ({t.content_hash}) {t.description}\n[dim]changelog:[/] {t.changelog}\n"
              f"[dim]parameters:[/] {t.model_parameters}\n--- system ---\n{t.system}\n--- user ---\n{t.user}",
              highlight=False, markup=True)


@prompts_app.command("diff")
@run
def diff(name: str, old: str, new: str) -> None:
    """Unified diff of two versions."""
    reg = _registry()
    a, b = reg.template(name, old), reg.template(name, new)
    for part in ("system", "user"):
        lines = difflib.unified_diff(getattr(a, part).splitlines(), getattr(b, part).splitlines(),
                                     f"{a.ref} {part}", f"{b.ref} {part}", lineterm="")
        out.print("\n".join(lines), highlight=False, markup=False)


@prompts_app.command("validate")
@run
def validate(name: str, version: str) -> None:
    """Lint and test-render a version; exits 1 with the problems when it fails."""
    problems = _registry().validate(name, version, who="cli")
    for p in problems:
        out.print(f"[red]✗[/] {p}", highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"{name}@{version}: passed")


@prompts_app.command("promote")
@run
def promote(name: str, version: str, why: str = typer.Option("", "--why")) -> None:
    """Make a version active, validating it first if it never was (the app picks it up within its TTL)."""
    reg = _registry()
    _validate_once(reg, name, version)
    a = reg.promote(name, version, who="cli", why=why or None)
    out.print(f"{name}: active {a.active}")


@prompts_app.command("rollback")
@run
def rollback(name: str, why: str = typer.Option("", "--why")) -> None:
    """Return to the version that was active before the current one."""
    a = _registry().rollback(name, who="cli", why=why or None)
    out.print(f"{name}: active {a.active}")


@prompts_app.command("ab")
@run
def ab(name: str, canary: str = typer.Argument(None), weight: float = typer.Option(0.1, "--weight"),
       stop: bool = typer.Option(False, "--stop", help="End the A/B test.")) -> None:
    """Serve CANARY to a sticky WEIGHT share (0..1) of users (or --stop)."""
    if not stop and canary is None:
        raise ConfigError("name the canary version, or pass --stop to end the A/B test")
    reg = _registry()
    if not stop:
        _validate_once(reg, name, canary)
    a = reg.set_ab(name, None if stop else canary, 0.0 if stop else weight, who="cli")
    out.print(f"{name}: active {a.active}, canary {a.canary or '-'} at {a.canary_weight:.0%}")


@prompts_app.command("deploy")
@run
def deploy(folder: str = typer.Argument(None, help="Folder of <name>/<version>.yaml files (default: "
                                                   "NEWSRAG_RELEASE_PROMPTS_DIR, else the shipped templates).")) -> None:
    """Register a folder's new template versions, as the prompts_deploy DAG does (all or nothing); a
    template with no active version gets the folder's newest valid version active."""
    from newsrag.prompts.release import deploy as deploy_folder

    settings = command_settings()
    _registry(settings).close()  # the shipped templates first, as every command does
    result = deploy_folder(folder, who="cli", settings=settings)
    out.print(f"{result['folder']}: registered {', '.join(result['registered']) or 'nothing new'}"
              + (f"; active now: {', '.join(result['activated'])}" if result["activated"] else ""), highlight=False)
