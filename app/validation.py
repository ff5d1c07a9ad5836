"""Request bodies hold valid Unicode only.

JSON may spell a lone surrogate (``"\\ud800"``) that Python's parser accepts but that no UTF-8
encoder can write: it would fail later, in SQLite, the embedder or a response, as a 500 or a stream
cut short. Request models refuse it up front, with a 422 that does not echo the text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_validator


def has_lone_surrogate(value: Any) -> bool:
    """True when any string in ``value`` (a parsed JSON document: keys too) cannot be UTF-8 encoded.
    Walks with a stack, not recursion, so a deeply nested body cannot raise RecursionError."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")  # fails only on a surrogate code point
    except UnicodeEncodeError:
        return False
    return True


class UnicodeBody(BaseModel):
    """Base of the request models: any lone surrogate anywhere in the body (extra fields too) is a 422."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if has_lone_surrogate(data):
            raise ValueError("the body holds text that is not valid Unicode (a lone surrogate such as \\ud800)")
        return data
