"""feedparser behind an exception boundary per item.

feedparser 6 raises on some hostile input instead of flagging it ``bozo``: a character reference to
a lone surrogate (``&#xD800;``: UnicodeEncodeError), a huge or out-of-range one
(``&#99999999999;``: OverflowError, ``&#x110000;``: ValueError), an empty ``<width>`` nested in a
text element (TypeError). One such item would lose the whole feed. When the whole document raises,
its items are parsed apart, each inside the feed's own shell, by halves: a bad item becomes its
own failure and the rest of the feed is read as usual. A shell that still raises is retried once
with invalid character references replaced by U+FFFD and empty elements dropped; a feed that
cannot be parsed even then is a SourceError naming feedparser's exception.
"""

from __future__ import annotations

import bisect
import io
import itertools
import re
from typing import Any

import feedparser
from feedparser.encodings import convert_to_utf8

from newsrag.core.errors import SourceError
from newsrag.ingest.models import ItemFailure

_ITEM_OPEN = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s/>]", re.IGNORECASE)
_ITEM_CLOSE = re.compile(rb"</(?:[\w.-]+:)?(?:item|entry)\s*>", re.IGNORECASE)
_CHARREF = re.compile(rb"&#([xX][0-9a-fA-F]+|[0-9]+);")
_EMPTY_ELEMENT = re.compile(rb"<([\w:.-]+)(?:\s[^<>]*)?>\s*</\1\s*>")
_LABEL_TAGS = (b"link", b"guid", b"id", b"title")
_LABEL_CHARS = 200


def parse_isolated(data: bytes, headers: dict[str, str], source_id: str,
                   max_items: int | None = None) -> tuple[Any, list[ItemFailure]]:
    """feedparser's result for ``data``, and the items that could only be read apart and failed."""
    try:
        return _feedparser(data, headers), []
    except Exception as exc:  # noqa: BLE001 - any feedparser bug on hostile bytes; isolated below
        first = exc
    utf8, utf8_headers = _as_utf8(data, headers, source_id, first)
    head, tail, items = split_items(utf8)
    parsed, head, tail = _parse_shell(head, tail, utf8_headers, source_id, first)
    failures: list[ItemFailure] = []
    items = items if max_items is None else items[: max(max_items, 0)]
    # All items together failed already (the whole document did): start with the halves.
    parsed["entries"] = _read_apart(head, tail, items, utf8_headers, failures, known_bad=len(items) > 1)
    return parsed, failures


def _feedparser(data: bytes, headers: dict[str, str]) -> Any:
    # A stream, never bytes: feedparser would treat bytes that name a local file as its path.
    return feedparser.parse(io.BytesIO(data), response_headers=headers)


def _as_utf8(data: bytes, headers: dict[str, str], source_id: str,
             first: Exception) -> tuple[bytes, dict[str, str]]:
    """The document as feedparser decodes it (HTTP charset, declaration, BOM), re-encoded as UTF-8."""
    try:
        utf8 = convert_to_utf8(dict(headers), data, feedparser.FeedParserDict())
    except Exception as exc:  # an encoding feedparser cannot handle fails the source
        raise _unparseable(source_id, first) from exc
    media_type = (headers.get("content-type") or "application/xml").split(";")[0].strip()
    return utf8, {"content-type": f"{media_type}; charset=utf-8"}


def split_items(data: bytes) -> tuple[bytes, bytes, list[bytes]]:
    """(document before the first item, the rest without items, each ``<item>``/``<entry>``).
    Opening and closing tags are paired in one pass: linear even when closing tags are missing."""
    closes = [(m.start(), m.end()) for m in _ITEM_CLOSE.finditer(data)]
    starts = [start for start, _ in closes]
    items: list[tuple[int, int]] = []
    for match in _ITEM_OPEN.finditer(data):
        if items and match.start() < items[-1][1]:
            continue  # inside the previous item
        at = bisect.bisect_right(starts, match.start())
        if at == len(closes):
            break  # no closing tag follows: the rest is no item
        items.append((match.start(), closes[at][1]))
    if not items:
        return data, b"", []
    gaps = [data[end:start] for (_, end), (start, _) in itertools.pairwise(items)]
    tail = b"".join(gaps) + data[items[-1][1]:]
    return data[: items[0][0]], tail, [data[start:end] for start, end in items]


def _parse_shell(head: bytes, tail: bytes, headers: dict[str, str], source_id: str,
                 first: Exception) -> tuple[Any, bytes, bytes]:
    """The feed without its items (its metadata), and the shell the items are read in: retried
    once sanitised, so a bad channel title does not fail every item; then a SourceError."""
    try:
        return _feedparser(head + tail, headers), head, tail
    except Exception:  # noqa: BLE001 - retried below, sanitised
        head, tail = sanitized(head), sanitized(tail)
    try:
        return _feedparser(head + tail, headers), head, tail
    except Exception as exc:  # any feedparser bug: the source fails, named
        raise _unparseable(source_id, first) from exc


def _read_apart(head: bytes, tail: bytes, items: list[bytes], headers: dict[str, str],
                failures: list[ItemFailure], offset: int = 0, *, known_bad: bool = False) -> list[Any]:
    """Entries of ``items``, parsed in halves: a few bad items cost O(log n) parses each."""
    if not items:
        return []
    if not known_bad:
        try:
            return list(_feedparser(head + b"".join(items) + tail, headers).entries)
        except Exception as exc:  # noqa: BLE001 - one exception boundary per item
            if len(items) == 1:
                reason = f"the feed parser failed on this item: {type(exc).__name__}: {exc}"
                failures.append(ItemFailure(item=item_label(items[0], offset + 1), reason=reason))
                return []
    half = len(items) // 2
    return (_read_apart(head, tail, items[:half], headers, failures, offset)
            + _read_apart(head, tail, items[half:], headers, failures, offset + half))


def sanitized(data: bytes) -> bytes:
    """UTF-8 feed bytes with invalid character references replaced by U+FFFD and empty elements
    (``<width></width>``) dropped: the constructs feedparser 6 raises on."""
    return _EMPTY_ELEMENT.sub(b"", _CHARREF.sub(_valid_charref, data))


def _valid_charref(match: re.Match[bytes]) -> bytes:
    digits = match.group(1)
    hexadecimal = digits[:1] in (b"x", b"X")
    number = digits[1:] if hexadecimal else digits
    if len(number.lstrip(b"0")) > 8:
        return b"&#xFFFD;"  # far out of range (and int() refuses over 4,300 digits)
    code = int(number, 16 if hexadecimal else 10)
    valid = code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF
    return match.group(0) if valid else b"&#xFFFD;"


def item_label(raw: bytes, number: int) -> str:
    """An unparseable item's name: its link, guid, id or title as written, else ``#number``."""
    for tag in _LABEL_TAGS:
        found = re.search(rb"<" + tag + rb"(?:\s[^<>]*)?>([^<]{1,%d})<" % _LABEL_CHARS, raw, re.IGNORECASE)
        text = found.group(1).decode("utf-8", "replace").strip() if found else ""
        if text:
            return text
    return f"#{number}"


def _unparseable(source_id: str, exc: Exception) -> SourceError:
    return SourceError(source_id, f"the feed could not be parsed: {type(exc).__name__}: {exc}")
