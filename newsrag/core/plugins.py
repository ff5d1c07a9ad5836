"""One plugin mechanism: a typed registry of named objects over one entry-point group.

newsrag finds its source types, embedders, generators and rerankers by name. Every name, built-in or
not, is an entry point of an installed distribution: newsrag's own ``pyproject.toml`` declares the
built-ins under ``[project.entry-points."newsrag.<kind>"]`` exactly as an outside package declares
its plugins, so there is no second list of built-ins to keep in step, and installing a package is
all it takes to add a name.

The group is read once per registry, on first use, and an entry point is imported only when its
name is asked for (choosing the ``local`` embedder never imports openai). A name may also be set in
process (``registry[name] = obj`` or ``@registry.register(name)``): tests and applications that
embed newsrag use that, and it wins over an entry point of the same name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, MutableMapping
from importlib.metadata import EntryPoint, entry_points
from typing import TypeVar, cast

from newsrag.core.errors import ConfigError
from newsrag.core.settings import Settings

T = TypeVar("T")


class PluginLoadError(ConfigError):
    """An installed plugin cannot be used: its import failed, it is not what its group needs, or two
    distributions declare the same name. Names the group, the plugin and who declares it, so the fix
    (upgrade, repair or uninstall that distribution) is plain."""

    def __init__(self, group: str, name: str, provider: str, reason: str) -> None:
        self.group, self.name, self.provider, self.reason = group, name, provider, reason
        super().__init__(f"{group} plugin {name!r} from {provider} cannot be used: {reason}")


def callable_plugin(obj: object) -> Callable[..., object]:
    """The default check: a factory must be callable (its signature is the group's documented one)."""
    if not callable(obj):
        raise TypeError(f"expected a callable factory, got {type(obj).__name__}")
    return obj


class PluginRegistry(MutableMapping[str, T]):
    """Name -> plugin for one entry-point group, loaded lazily and checked once.

    ``kind`` names what the plugins are in messages ("generator"); ``setting`` is the variable that
    chooses one, when there is one ("NEWSRAG_EMBED_PROVIDER"); ``check`` turns a loaded object into
    a ``T`` or raises TypeError saying what is wrong with it. ``name in registry`` and iteration
    never import a plugin; ``registry[name]``, ``.values()`` and ``.items()`` do.
    """

    def __init__(self, group: str, kind: str, *, setting: str | None = None,
                 check: Callable[[object], T] | None = None) -> None:
        self.group, self.kind, self.setting = group, kind, setting
        self.check = check or cast(Callable[[object], T], callable_plugin)
        self._found: dict[str, list[EntryPoint]] | None = None  # the group, read on first use
        self._loaded: dict[str, T] = {}  # entry points imported so far
        self._set: dict[str, T] = {}  # set in process; wins over an entry point
        self._hidden: set[str] = set()  # deleted in process (a test making a name unavailable)

    def names(self) -> list[str]:
        """Every known name, sorted, without importing any plugin."""
        return sorted((set(self._entry_points()) | set(self._set)) - self._hidden)

    def load(self, name: str) -> T:
        """The plugin called ``name``; a ConfigError naming the known ones when there is none."""
        try:
            return self[name]
        except KeyError:
            raise ConfigError(self.unknown(name)) from None

    def unknown(self, name: object) -> str:
        """The message for a name no installed plugin provides."""
        prefix = f"{self.setting}: " if self.setting else ""
        return f"{prefix}unknown {self.kind} {name!r}; choose one of {', '.join(self.names()) or '(none installed)'}"

    def provider(self, name: str) -> str:
        """Who provides ``name``: the distribution and object of its entry point, or 'set in process'."""
        if name in self._set:
            return "set in process"
        eps = self._entry_points().get(name)
        if not eps or name in self._hidden:
            raise KeyError(name)
        return " and ".join(_provider(ep) for ep in eps)

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator setting ``name`` in process (packages declare an entry point instead)."""
        def deco(obj: T) -> T:
            self[name] = obj
            return obj

        return deco

    def __getitem__(self, name: str) -> T:
        if name in self._hidden:
            raise KeyError(name)
        if name in self._set:
            return self._set[name]
        if name not in self._loaded:
            eps = self._entry_points().get(name)
            if not eps:
                raise KeyError(name)
            # No lock: two threads loading the same name at once import it once (Python's import
            # lock) and store the same object.
            self._loaded[name] = self._load(name, eps)
        return self._loaded[name]

    def __setitem__(self, name: str, obj: T) -> None:
        self._hidden.discard(name)
        self._set[name] = obj

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._set.pop(name, None)
        self._hidden.add(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"PluginRegistry({self.group!r}: {', '.join(self.names())})"

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        if self._found is None:
            found: dict[str, list[EntryPoint]] = {}
            for ep in entry_points(group=self.group):
                found.setdefault(ep.name, []).append(ep)
            self._found = found
        return self._found

    def _load(self, name: str, eps: list[EntryPoint]) -> T:
        provider = " and ".join(_provider(ep) for ep in eps)
        if len(eps) > 1:  # which one wins would depend on sys.path order: refuse to guess
            raise PluginLoadError(self.group, name, provider, "declared by more than one distribution")
        try:
            obj = eps[0].load()
        except Exception as exc:  # a third party's import-time failure of any kind: say whose it is
            raise PluginLoadError(self.group, name, provider, f"{type(exc).__name__}: {exc}") from exc
        try:
            return self.check(obj)
        except TypeError as exc:
            raise PluginLoadError(self.group, name, provider, str(exc)) from None


def call_factory(factory: Callable[..., T], *args: object, settings: Settings) -> T:
    """``factory(*args, settings)``: a factory gets the configuration root (``settings``) last, so a
    plugin reads its own settings class from it as newsrag's factories do. A factory written before
    the root was passed takes one argument fewer; it is still called, without it."""
    if _accepts(factory, *args, settings):
        return factory(*args, settings)
    return factory(*args)


def _accepts(factory: Callable[..., object], *args: object) -> bool:
    try:
        signature = inspect.signature(factory)
    except ValueError:  # no signature to read (a C callable): assume the current contract
        return True
    try:
        signature.bind(*args)
    except TypeError:
        return False
    return True


def _provider(ep: EntryPoint) -> str:
    dist = ep.dist
    who = f"distribution {dist.name} {dist.version}" if dist is not None else "an unnamed distribution"
    return f"{who} ({ep.value})"
