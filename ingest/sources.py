"""newsrag's own source types. Each is a :class:`newsrag.ingest.registry.SourceType`, found by name
through the ``newsrag.sources`` entry-point group exactly as a plugin's would be (pyproject.toml
declares them): a source turns its spec into articles and per-item failures.

A failing item never fails its source; a source-level problem raises SourceError.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsrag.core.errors import ItemError, SourceError
from newsrag.ingest.fetch import Deadline, Fetcher, fetch, fetch_file
from newsrag.ingest.models import Article, ItemFailure
from newsrag.ingest.normalize import (
    canonical_url,
    clean_text,
    clean_title,
    parse_date,
    utc_offset_minutes,
)
from newsrag.ingest.parse import (
    SitemapEntry,
    SitemapParse,
    extract_article,
    parse_feed,
    parse_sitemap,
)
from newsrag.ingest.registry import (
    SOURCE_TYPES,
    FeedSpec,
    FolderSpec,
    JsonlSpec,
    PageSpec,
    SitemapSpec,
    SourceType,
)
from newsrag.ingest.state import IngestState

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml",
              "text/xml", "application/x-rss+xml", "text/plain", "application/octet-stream", "text/html")
PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
SITEMAP_TYPES = ("application/xml", "text/xml", "application/x-gzip", "text/plain", "application/octet-stream")
MAX_SITEMAP_DEPTH = 2  # an index of indexes of sitemaps, no deeper
MAX_CHILD_SITEMAPS = 50  # followed per index


@dataclass
class Collected:
    articles: list[Article] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    not_modified: bool = False
    complete: bool = False  # the source listed everything it has (snapshot semantics allowed)
    commit: Callable[[], None] = lambda: None  # remember validators once the run has succeeded


@dataclass
class SourceContext:
    fetcher: Fetcher
    state: IngestState
    base_dir: Path
    max_full_article_fetches: int = 50
    deadlines: dict[str, Deadline] = field(default_factory=dict)  # by source id: one context serves one run
    trust_markers: bool = True  # False: a full or windowed read, which neither sends validators nor trusts marks
    # The environment the edge captured (Settings.environ): what ``${VAR}`` in a source's headers means.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    def headers(self, spec: Any) -> dict[str, str]:
        """The source's ``http.headers`` with their ``${VAR}`` references resolved (never logged)."""
        return spec.http.resolved_headers(self.environ)

    def validators(self, spec: Any, key: str) -> tuple[str | None, str | None]:
        """The source's own validators for ``key`` (a URL or a file pattern), when this read trusts them."""
        return self.state.validators(spec.id, key) if self.trust_markers else (None, None)

    def saver(self, spec: Any, key: str, etag: str | None, last_modified: str | None) -> Callable[[], None]:
        """Remembers the validators once the run has succeeded (``Collected.commit``)."""
        return lambda: self.state.save_validators(spec.id, key, etag, last_modified)

    def deadline(self, spec: Any) -> Deadline:
        """The wall-clock budget of all the source's fetching (``http.deadline``), from its first fetch."""
        if spec.id not in self.deadlines:
            self.deadlines[spec.id] = Deadline.start(spec.http.deadline, "source deadline", "http.deadline")
        return self.deadlines[spec.id]


def get_source(kind: str) -> SourceType:
    """A reader of the source type ``kind`` (newsrag's or a plugin's); ConfigError when none is installed."""
    return SOURCE_TYPES.load(kind)()


def _get(ctx: SourceContext, spec: Any, url: str, accept: tuple[str, ...], conditional: bool = True,
         trusted: bool = True) -> Any:
    """Fetch a URL of the registry (trusted: may be file://) or one found in content (never a file)."""
    etag, modified = ctx.validators(spec, url) if conditional else (None, None)
    return fetch(ctx.fetcher, url, source_id=spec.id, etag=etag, last_modified=modified, allow_files=trusted,
                 headers=ctx.headers(spec), accept=accept, timeout=spec.http.timeout,
                 deadline=ctx.deadline(spec), politeness=spec.http)  # per_host_concurrency, per_host_delay


def _registry_url(ctx: SourceContext, url: str) -> str:
    """Registry URLs may be paths relative to the registry file (offline feeds)."""
    if urlsplit(url).scheme in ("http", "https"):
        return url
    path = url.removeprefix("file://")
    return _resolve(ctx, path).resolve().as_uri()


class FeedSource:
    spec = FeedSpec

    def collect(self, spec: Any, ctx: SourceContext) -> Collected:
        url = _registry_url(ctx, spec.url)
        res = _get(ctx, spec, url, FEED_TYPES)
        if res.not_modified:
            return Collected(not_modified=True)
        parsed = parse_feed(res.content, source_id=spec.id, feed_url=res.url, content_type=res.content_type,
                            encoding=res.encoding, tags=tuple(spec.tags), max_items=spec.max_items)
        out = Collected(list(parsed.articles), list(parsed.failures),
                        commit=ctx.saver(spec, url, res.etag, res.last_modified))
        if spec.fetch_full_article:
            self._upgrade(spec, ctx, out, parsed.needs_fetch[: ctx.max_full_article_fetches])
        return out

    def _upgrade(self, spec: Any, ctx: SourceContext, out: Collected, summaries: list[Article]) -> None:
        """Replace summary-only items by the extracted article; on failure keep the summary."""
        index = {a.url: i for i, a in enumerate(out.articles)}
        for summary in summaries:
            try:
                full = _page_article(spec, ctx, summary.url, summary.title)
            except (SourceError, ItemError) as exc:
                out.failures.append(ItemFailure(item=summary.url, reason=f"full article not fetched, "
                                                f"kept the feed summary: {getattr(exc, 'reason', exc)}"))
                continue
            out.articles[index[summary.url]] = full.model_copy(update={
                "url": summary.url, "published_at": full.published_at or summary.published_at,
                "title": full.title or summary.title, "tags": summary.tags,
                "author": full.author or summary.author})


def _page_article(spec: Any, ctx: SourceContext, url: str, title: str | None = None) -> Article:
    res = _get(ctx, spec, url, PAGE_TYPES, conditional=False, trusted=False)
    article = extract_article(res.content, url=res.url, source_id=spec.id, fallback_title=title)
    return article.model_copy(update={"url": canonical_url(url), "tags": tuple(spec.tags),
                                      "language": article.language or spec.language})


class PageSource:
    spec = PageSpec

    def collect(self, spec: Any, ctx: SourceContext) -> Collected:
        out = Collected()
        for url in spec.urls[: spec.max_items]:
            try:
                out.articles.append(_page_article(spec, ctx, url))
            except (ItemError, SourceError, ValueError) as exc:
                out.failures.append(ItemFailure(item=url, reason=getattr(exc, "reason", str(exc))))
        return out


class SitemapSource:
    spec = SitemapSpec

    def collect(self, spec: Any, ctx: SourceContext) -> Collected:
        crawl = _SitemapCrawl(spec, ctx)
        pages = crawl.pages()
        out = Collected(failures=crawl.failures)
        for n, (url, _published, title) in enumerate(pages):
            if not crawl.spend():
                crawl.skipped += len(pages) - n
                break
            try:
                out.articles.append(_page_article(spec, ctx, url, title))
            except (ItemError, SourceError, ValueError) as exc:
                out.failures.append(ItemFailure(item=url, reason=getattr(exc, "reason", str(exc))))
        out.failures += crawl.stop_warning()
        return out


class _SitemapCrawl:
    """One sitemap source's walk. Each sitemap is fetched once (by canonical URL), and all fetches,
    sitemaps and pages alike, stop at ``max_requests`` or the source's deadline: a sitemap that lists
    itself, or an endless fan of generated ones, cannot turn the ingester on a host."""

    def __init__(self, spec: Any, ctx: SourceContext) -> None:
        self.spec, self.ctx = spec, ctx
        self.budget: int = spec.max_requests
        self.requests = 0
        self.skipped = 0  # URLs the budget or the deadline left unfetched
        self.overflow = 0  # page entries past what the budget could ever fetch (not kept)
        self.room = min(spec.max_items or self.budget, self.budget)
        self.cutoff = datetime.now(UTC) - timedelta(days=spec.since_days) if spec.since_days else None
        self.visited: set[str] = set()
        self.entries: dict[str, SitemapEntry] = {}
        self.failures: list[ItemFailure] = []

    def pages(self) -> list[SitemapEntry]:
        """The page entries to fetch: recent enough, each URL once, at most ``max_items``."""
        self.spend()  # the root sitemap: the budget is at least 1
        self.visited.add(_visit_key(self.spec.url))
        self._walk(self.spec.url, depth=0)
        wanted = self.overflow if self.spec.max_items is None else self.spec.max_items - self.room
        self.skipped += min(self.overflow, wanted)  # entries max_items wanted but the budget could not fetch
        return list(self.entries.values())

    def spend(self) -> bool:
        """Take one request from the budget; False once it or the source's deadline is spent."""
        if self.requests >= self.budget or self.ctx.deadline(self.spec).remaining() <= 0:
            return False
        self.requests += 1
        return True

    def stop_warning(self) -> list[ItemFailure]:
        if not self.skipped:
            return []
        why = (f"sitemap request budget of {self.budget} reached" if self.requests >= self.budget
               else f"{self.ctx.deadline(self.spec).describe()} reached")
        return [ItemFailure(item=self.spec.url, reason=f"{why}; {self.skipped} URLs not fetched")]

    def _walk(self, url: str, depth: int) -> None:
        parsed = self._sitemap(url, depth)
        if parsed is None:
            return
        self._keep(parsed.urls)
        listed = parsed.child_sitemaps[:MAX_CHILD_SITEMAPS] if depth < MAX_SITEMAP_DEPTH else []
        children = self._unvisited(url, listed)
        for n, child in enumerate(children):
            if not self.spend():
                self.skipped += len(children) - n
                return
            self._walk(child, depth + 1)

    def _sitemap(self, url: str, depth: int) -> SitemapParse | None:
        """The root's failure fails the source; a child's is that child's failure only."""
        try:  # a child's URL comes from content: it may never name a local file
            res = _get(self.ctx, self.spec, url, SITEMAP_TYPES, conditional=False, trusted=depth == 0)
            parsed = parse_sitemap(res.content, source_id=self.spec.id, base_url=res.url)
        except SourceError as exc:
            if depth == 0:
                raise
            self.failures.append(ItemFailure(item=url, reason=f"child sitemap not read: {exc.reason}"))
            return None
        self.visited.add(_visit_key(res.url))  # after redirects, the final URL counts as visited too
        self.failures += parsed.failures
        return parsed

    def _keep(self, entries: Iterable[SitemapEntry]) -> None:
        """Remember recent page entries, each URL once, and no more than the budget could fetch."""
        for entry in entries:
            if entry.url in self.entries or not self._recent(entry):
                continue
            if len(self.entries) < self.room:
                self.entries[entry.url] = entry
            else:
                self.overflow += 1

    def _recent(self, entry: SitemapEntry) -> bool:
        return self.cutoff is None or entry.published_at is None or entry.published_at >= self.cutoff

    def _unvisited(self, parent: str, children: list[str]) -> list[str]:
        fresh: list[str] = []
        repeated: set[str] = set()  # canonical URLs: "?utm_source=x" does not make a new sitemap
        for child in children:
            key = _visit_key(child)
            if key in self.visited:
                repeated.add(key)
            else:
                fresh.append(child)
                self.visited.add(key)
        if repeated:
            self.failures.append(ItemFailure(item=parent, reason=_repeat_reason(parent, repeated)))
        return fresh


def _visit_key(url: str) -> str:
    try:
        return canonical_url(url)
    except ValueError:  # a registry path or file:// root: compared as written
        return url


def _repeat_reason(parent: str, repeated: set[str]) -> str:
    itself = _visit_key(parent) in repeated
    if itself and len(repeated) == 1:
        return "sitemap lists itself; not fetched again"
    also = " (itself among them)" if itself else ""
    return f"sitemap lists {len(repeated)} sitemap(s) already visited or listed{also}; not fetched again"


def _files_etag(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p}:{st.st_mtime_ns}:{st.st_size}\n".encode())
    return h.hexdigest()


def _resolve(ctx: SourceContext, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else ctx.base_dir / p


class JsonlSource:
    spec = JsonlSpec

    def collect(self, spec: Any, ctx: SourceContext) -> Collected:
        pattern = _resolve(ctx, spec.path)
        files = sorted(pattern.parent.glob(pattern.name)) if any(c in pattern.name for c in "*?[") else [pattern]
        if not files or not all(f.is_file() for f in files):
            raise SourceError(spec.id, f"no JSONL file at {pattern}")
        key = f"jsonl:{pattern}"
        etag = _files_etag(files)
        if ctx.validators(spec, key)[0] == etag:
            return Collected(not_modified=True)
        out = Collected(complete=True, commit=ctx.saver(spec, key, etag, None))
        for item_id, record in _jsonl_records(spec.id, files, out.failures):
            try:
                out.articles.append(jsonl_article(spec, item_id, record))
            except (ValueError, TypeError, KeyError) as exc:
                out.failures.append(ItemFailure(item=item_id, reason=str(exc)))
            if spec.max_items and len(out.articles) >= spec.max_items:
                break
        return out


def _jsonl_records(source_id: str, files: list[Path], failures: list[ItemFailure]) -> Iterator[tuple[str, Any]]:
    for path in files:
        with path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                item = f"{path.name}:{n}"
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    failures.append(ItemFailure(item=item, reason=f"invalid JSON: {exc}"))
                    continue
                if not isinstance(record, dict):
                    failures.append(ItemFailure(item=item, reason="a line must hold a JSON object"))
                    continue
                yield item, record


def jsonl_article(spec: Any, item_id: str, record: dict[str, Any]) -> Article:
    f = spec.fields
    text = clean_text(str(record.get(f.text) or ""))
    if not text:
        raise ValueError(f"missing or empty text field {f.text!r}")
    raw_url = str(record.get(f.url) or "")
    key = str(record[f.id]) if f.id and record.get(f.id) not in (None, "") else None
    if not raw_url and not key:
        raise ValueError(f"missing url field {f.url!r} (and no id field configured)")
    url = canonical_url(raw_url) if raw_url else ""
    author = record.get(f.author) if f.author else None
    if isinstance(author, list):
        author = ", ".join(str(a) for a in author if a)
    return Article(
        source_id=spec.id, url=url, key=key, title=clean_title(str(record.get(f.title) or "")) or text[:80],
        text=text, published_at=parse_date(record.get(f.published)) if f.published else None,
        published_offset=utc_offset_minutes(record.get(f.published)) if f.published else None,
        author=str(author) if author else None, language=spec.language, tags=tuple(spec.tags))


class FolderSource:
    spec = FolderSpec

    def collect(self, spec: Any, ctx: SourceContext) -> Collected:
        root = _resolve(ctx, spec.path)
        if not root.is_dir():
            raise SourceError(spec.id, f"folder {root} does not exist")
        files = sorted({p for pattern in spec.patterns for p in root.glob(pattern) if p.is_file()})
        key = f"folder:{root}"
        etag = _files_etag(files)
        if ctx.validators(spec, key)[0] == etag:
            return Collected(not_modified=True)
        out = Collected(complete=True, commit=ctx.saver(spec, key, etag, None))
        for path in files[: spec.max_items]:
            try:
                out.articles.append(self._article(spec, root, path))
            except (ItemError, SourceError, ValueError, UnicodeDecodeError) as exc:
                out.failures.append(ItemFailure(item=str(path.relative_to(root)),
                                                reason=getattr(exc, "reason", str(exc))))
        return out

    def _article(self, spec: Any, root: Path, path: Path) -> Article:
        rel = path.relative_to(root).as_posix()
        data = fetch_file(str(path), source_id=spec.id, max_bytes=10_000_000).content
        if path.suffix.lower() in (".html", ".htm"):
            art = extract_article(data, url=path.resolve().as_uri(), source_id=spec.id, fallback_title=path.stem)
            return art.model_copy(update={"key": f"{spec.id}:{rel}", "tags": tuple(spec.tags)})
        text = data.decode("utf-8")
        first, _, rest = text.strip().partition("\n")
        title = clean_title(first.lstrip("# ").strip()) or path.stem
        body = clean_text(rest if rest.strip() else first)
        if not body:
            raise ValueError("empty file")
        return Article(source_id=spec.id, url=path.resolve().as_uri(), key=f"{spec.id}:{rel}", title=title,
                       text=body, language=spec.language, tags=tuple(spec.tags))
