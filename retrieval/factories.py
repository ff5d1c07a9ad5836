"""Calling a generator or reranker factory with the root settings.

Factories of the ``newsrag.generators`` and ``newsrag.rerankers`` groups get the configuration root
(:class:`~newsrag.core.settings.Settings`) as their last argument, so that a plugin reads its own
settings class from it (``settings.get(MyPluginSettings)``) like newsrag's own factories do, and never
the process environment. A factory written before the root was passed takes one argument fewer; it
is still called, without it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

from newsrag.core.settings import Settings

T = TypeVar("T")


def call_factory(factory: Callable[..., T], *args: object, settings: Settings) -> T:
    """``factory(*args, settings)``, or ``factory(*args)`` when it takes no settings argument."""
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
