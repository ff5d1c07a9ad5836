"""Small, pure normalizers for feed and page input: URLs, dates, HTML-to-text, titles, languages."""

from __future__ import annotations

import calendar
import re
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.etree
import lxml.html
from dateutil import parser as date_parser
from feedparser.datetimes import _parse_date as feedparser_date

# fmt: off
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "mc_cid", "mc_eid",
    "igshid", "ref", "ref_src", "ref_url", "cmpid", "ncid", "sr_share", "_ga", "_gl", "spm",
    "at_medium", "at_campaign", "guccounter", "guce_referrer", "guce_referrer_sig", "ocid",
    "mkt_tok", "_hsenc", "_hsmi", "oly_enc_id", "oly_anon_id", "vero_id", "vero_conv", "smid",
    "smtyp", "emc", "s_cid", "xtor", "wt.mc_id", "wt.mc_ev", "wt_mc", "wt_zmc",
    "__twitter_impression", "soc_src", "soc_trk", "fb_action_ids", "fb_action_types",
})
TRACKING_PREFIXES = ("utm_", "at_custom", "pk_", "mtm_")
DEFAULT_PORTS = {"http": 80, "https": 443}
MIN_YEAR = 1990
# Portuguese, German and Spanish month spellings -> English (day names are dropped).
_MONTHS = {
    "janeiro": "Jan", "fev": "Feb", "fevereiro": "Feb", "março": "Mar", "marco": "Mar",
    "abr": "Apr", "abril": "Apr", "maio": "May", "mai": "May", "junho": "Jun", "julho": "Jul",
    "ago": "Aug", "agosto": "Aug", "set": "Sep", "setembro": "Sep", "out": "Oct",
    "outubro": "Oct", "novembro": "Nov", "dez": "Dec", "dezembro": "Dec",
    "januar": "Jan", "jän": "Jan", "jänner": "Jan", "februar": "Feb", "mär": "Mar",
    "märz": "Mar", "mrz": "Mar", "maerz": "Mar", "juni": "Jun", "juli": "Jul", "okt": "Oct",
    "oktober": "Oct", "dezember": "Dec", "ene": "Jan", "enero": "Jan", "febrero": "Feb",
    "marzo": "Mar", "mayo": "May", "junio": "Jun", "julio": "Jul", "septiembre": "Sep",
    "octubre": "Oct", "noviembre": "Nov", "dic": "Dec", "diciembre": "Dec",
}
_TZINFOS = {name: hours * 3600 for name, hours in {
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "BST": 1, "CET": 1, "CEST": 2, "MEZ": 1,
    "MESZ": 2, "EET": 2, "EEST": 3, "MSK": 3, "JST": 9, "KST": 9, "HKT": 8, "SGT": 8,
    "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13, "BRT": -3, "BRST": -2, "EST": -5,
    "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9,
    "AKDT": -8, "HST": -10,
}.items()}
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl",
    "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "thead",
    "tfoot", "tr", "ul", "body", "html",
})
_DROP_TAGS = frozenset({
    "script", "style", "noscript", "template", "iframe", "object", "embed", "applet", "svg",
    "math", "canvas", "head", "button", "select", "textarea",
})
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufeff\u200b\ufffe\uffff]")
_LOOKS_HTML = re.compile(
    r"<!--|<!\[CDATA\[|<!doctype|</?[a-zA-Z][a-zA-Z0-9:-]*(\s[^<>]*)?/?>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);"
)
# fmt: on
_BREAK = "\x00"  # paragraph marker while walking; real NULs are stripped before parsing
_YEARISH = re.compile(r"\d{4}|\b\d{1,2}[\s-]+[^\W\d_]{3,}\.?[\s-]+\d{2}\b")
_NAMED_ZONE = re.compile(r"(?<=\s)\(?([A-Za-z]{2,5})\)?$")
_PARAGRAPH_SPLIT = re.compile(r"\n[^\S\n]*\n|" + _BREAK)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def canonical_url(url: str, base: str | None = None) -> str:
    """The canonical form of an http(s) URL: the key articles are identified and deduplicated by."""
    raw = (url or "").strip()
    if _SURROGATE.search(raw):  # a URL is an identity, hashed as UTF-8: never guess a repair
        raise ValueError("URL holds a lone surrogate (not valid Unicode)")
    if base:
        raw = urljoin(base.strip(), raw)
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError(f"URL has no host: {url!r}")
    port = parts.port  # raises ValueError for an invalid port
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", _clean_query(parts.query), ""))


def _clean_query(query: str) -> str:
    """Tracking parameters dropped, the rest sorted by key; values keep their exact encoding."""
    pairs = [(p.split("=", 1)[0], p) for p in query.split("&") if p]
    kept = [(k, p) for k, p in pairs if not _is_tracking(k.lower())]
    return "&".join(p for _, p in sorted(kept, key=lambda kp: kp[0]))  # stable for repeated keys


def _is_tracking(key: str) -> bool:
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def parse_date(value: object) -> datetime | None:
    """A tz-aware UTC datetime, or None when the value is missing, unparseable or implausible."""
    try:
        parsed = _to_datetime(value)
        if parsed is None:
            return None
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError, TypeError):
        return None
    if parsed.year < MIN_YEAR or parsed > datetime.now(UTC) + timedelta(days=2):
        return None
    return parsed


def utc_offset_minutes(value: object) -> int | None:
    """The UTC offset the source wrote with its date ("Tue, 08 Sep 2026 22:15 -0400" -> -240), so
    the publisher's own day can be shown; None when it gave none (or a UTC timestamp)."""
    if isinstance(value, tuple | int | float) or not isinstance(value, str | datetime):
        return None
    try:
        parsed = value if isinstance(value, datetime) else _parse_local(value)
        offset = parsed.utcoffset() if parsed is not None else None
    except (ValueError, OverflowError, OSError, TypeError):
        return None
    return None if offset is None else int(offset.total_seconds() // 60)


def _parse_local(value: str) -> datetime | None:
    """Like :func:`_parse_date_string`, but keeping the written offset (feedparser converts to UTC)."""
    text = _NAMED_ZONE.sub(_zone_offset, " ".join(value.split()))
    return _first_parse(text, (datetime.fromisoformat, _parse_dateutil))


def _to_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, tuple) and len(value) == 9:  # feedparser's *_parsed: UTC struct_time
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(float(value))
    if isinstance(value, str):
        return _parse_date_string(value)
    return None


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, UTC)  # s or ms


def _parse_date_string(value: str) -> datetime | None:
    text = " ".join(value.split())
    if re.fullmatch(r"\d{9,13}(\.\d+)?", text):
        return _from_epoch(float(text))
    if not _YEARISH.search(text):
        return None  # "10:00", "Jan 5": parsers would fill in today's date or year
    text = _NAMED_ZONE.sub(_zone_offset, text)
    for candidate in filter(None, dict.fromkeys((text, _translate_names(text)))):
        parsed = _first_parse(candidate, (datetime.fromisoformat, _parse_feedparser, _parse_dateutil))
        if parsed is not None:
            return parsed
    return None


def _first_parse(text: str, parsers: tuple[Callable[[str], datetime | None], ...]) -> datetime | None:
    """The first parser's result that is not an error or None."""
    for parse in parsers:
        try:
            parsed = parse(text)
        except (ValueError, TypeError, OverflowError, IndexError, KeyError):
            continue
        if parsed is not None:
            return parsed
    return None


def _zone_offset(match: re.Match[str]) -> str:
    seconds = _TZINFOS.get(match.group(1).upper())
    if seconds is None:
        return match.group(0)
    return f"{'-' if seconds < 0 else '+'}{abs(seconds) // 3600:02d}{abs(seconds) % 3600 // 60:02d}"


def _parse_feedparser(text: str) -> datetime | None:
    parsed = feedparser_date(text)  # RFC 822 with named zones, W3C-DTF, ISO 8601, asctime, ...
    return None if parsed is None else datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _parse_dateutil(text: str) -> datetime:
    # A far-past default: a string without a year lands in year 1 and is rejected, never "now".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return date_parser.parse(text, default=datetime(1, 1, 1), tzinfos=_TZINFOS)


def _translate_names(text: str) -> str:
    """ "Sex, 05 Set 2018" / "Montag, 5. März 2018" / "5 de janeiro de 2018" -> English forms."""

    def swap(match: re.Match[str]) -> str:
        key = match.group(0).rstrip(".").lower()
        return _MONTHS.get(key) or ("" if key in ("de", "del") else match.group(0))

    text = re.sub(r"^[^\d,]+,\s*", "", text)  # a leading day name: "Sex, ", "segunda-feira, "
    return " ".join(re.sub(r"[^\W\d_]+\.?", swap, text).split())


def strip_bad_chars(text: str) -> str:
    """Drop control characters (except tab/newline), lone surrogates, BOMs and zero-width spaces."""
    return _BAD_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_text(html_or_text: str) -> str:
    """Plain text with paragraphs separated by blank lines; scripts and styles never survive."""
    text = strip_bad_chars(html_or_text or "")
    if not text.strip():
        return ""
    if _LOOKS_HTML.search(text):
        text = _html_to_text(text)
    return _paragraphs(text)


def _html_to_text(markup: str) -> str:
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)
    try:
        root = lxml.html.document_fromstring(markup.encode("utf-8"), parser=parser)
    except (lxml.etree.ParserError, ValueError):
        return ""  # nothing parsable (only a comment, say): never fall back to raw markup
    for element in list(root.iter()):
        if isinstance(element.tag, str) and element.tag.lower() in _DROP_TAGS:
            element.drop_tree()  # keeps the tail text, drops the element and its content
    parts: list[str] = []
    for event, element in lxml.etree.iterwalk(root, events=("start", "end")):
        tag = element.tag.lower() if isinstance(element.tag, str) else ""
        if tag in _BLOCK_TAGS:
            parts.append(_BREAK)
        text = element.text if event == "start" else element.tail
        if text and (tag or event == "end"):
            parts.append(text)
    return "".join(parts)


def _paragraphs(text: str) -> str:
    paragraphs = (" ".join(strip_bad_chars(p).split()) for p in _PARAGRAPH_SPLIT.split(text))
    return "\n\n".join(p for p in paragraphs if p)


def clean_title(s: str | None) -> str:
    """A one-line title: tags stripped, entities unescaped, whitespace collapsed."""
    return " ".join(clean_text(s or "").split())


def detect_language(text: str | None, hint: str | None) -> str | None:
    """The primary language subtag of a hint ("en-US" -> "en"); no guessing without a hint."""
    primary = re.split(r"[-_\s]", (hint or "").strip(), maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None
