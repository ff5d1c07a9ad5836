#!/usr/bin/env python
"""Fuzz the parsers with seeded mutations of the project's own fixtures.

    .venv/bin/python bench/fuzz.py [--cases 10000] [--seed 0] [--max-seconds 900] [--slow-seconds 5]
    .venv/bin/python bench/fuzz.py --seed 0 --case 1234      # one case again, with its traceback

Each case takes one fixture (tests/fixtures/feeds, tests/fixtures/pages, examples/news/feeds),
applies one to three mutations (byte flips, truncation, tag deletion, hostile character references
such as ``&#xD800;`` and ``&#99999999999;``, entities, empty ``<width></width>``, re-encoding with
a wrong declaration or BOM, raw invalid bytes, repeated slices, deep nesting) and runs it through
``parse_feed``, ``parse_sitemap`` or ``extract_article`` (sometimes the "wrong" one on purpose).

A parser may return a result (items that failed are in it) or raise SourceError or ItemError; any
other exception is *unhandled*. A result holding a string that cannot be encoded as UTF-8 (a lone
surrogate) is *bad output*: it would break the store later. A case over ``--slow-seconds`` is
*slow*. The exit code is 1 when any case is unhandled, bad or slow. Case N of seed S is rebuilt from
``random.Random(f"{S}:{N}")`` alone, so ``--seed S --case N`` reproduces it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import BaseModel

from bench.harness.stats import summarize
from bench.harness.usage import load_average_text
from newsrag.core.errors import ItemError, SourceError

ROOT = Path(__file__).resolve().parents[1]
CORPUS = (("tests/fixtures/feeds", "*.xml"), ("tests/fixtures/pages/articles", "*.html"),
          ("examples/news/feeds", "*"))
PAGE_URL = "https://fuzz.example.com/news/article.html"
FEED_URL = "https://fuzz.example.com/feed.xml"
CROSS_PARSER_SHARE = 0.1  # cases run through another kind's parser (a page handed to parse_feed)
MAX_REPEAT_BYTES = 4096
HOSTILE_CHARREFS = (b"&#xD800;", b"&#xdfff;", b"&#55296;", b"&#0;", b"&#x0;", b"&#99999999999;",
                    b"&#x110000;", b"&#1114112;", b"&#xFFFE;", b"&#x1F;", b"&#x;", b"&#;", b"&#-1;",
                    b"&#x" + b"F" * 40 + b";", b"&#" + b"9" * 5000 + b";")
ENTITIES = (b"&nbsp;", b"&bogus;", b"&amp", b"&", b"&lt;script&gt;alert(1)&lt;/script&gt;",
            b"&#38;#xD800;", b"&copy;", b"]]>", b"<![CDATA[", b"<!--", b"<?pi x?>", b"<!DOCTYPE x>")
ELEMENTS = (b"<width></width>", b"<height></height>", b"<image><width></width></image>",
            b"<image><title><width></width></title></image>", b"<width/>", b"<title></title>",
            b"<link></link>", b"<pubDate></pubDate>", b"<enclosure/>", b"<guid></guid>",
            b'<media:thumbnail width="" height="x"/>', b"<updated></updated>",
            b"<published>99999999999999</published>", b"<item></item>", b"<entry/>")
RAW_BYTES = (b"\xed\xa0\x80", b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"\x00", b"\x80\x81", b"\xc3")
ENCODINGS = ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252", "shift_jis", "cp500")
DECLARED = ("utf-8", "utf-16", "latin-1", "shift_jis", "utf-7", "bogus-encoding", "cp500", "ascii")
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
# Warm-up, not timed: the first date htmldate hands to dateparser makes it compile every locale's
# patterns (about 2.5 s, once per process); a case paying that would be "slow" for no fault of its own.
WARM_UP_PAGE = (b'<html><head><meta property="article:published_time" content="2024-0\xc4\x8f4-09T06:30:00Z"></head><body><article>'
                b"<p>" + b"A warm-up paragraph long enough to count as the article text. " * 4 + b"</p>"
                b"</article></body></html>")
_DECLARATION = re.compile(rb"encoding=[\"'][^\"']*[\"']")
_TAG = re.compile(rb"</?[A-Za-z][^<>]{0,200}>")

RESULTS = ("ok", "items_failed", "source_error", "unhandled", "bad_output")
Mutator = Callable[[bytes, random.Random], tuple[bytes, str]]
Parser = Callable[[bytes], Any]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Fixture:
    kind: str  # feed | sitemap | page
    name: str
    data: bytes


@dataclass(frozen=True)
class Case:
    number: int
    parser: str
    fixture: str
    mutations: tuple[str, ...]
    data: bytes


@dataclass
class Outcome:
    case: Case
    seconds: float
    result: str  # ok | items_failed (ItemError, or failures in the result) | source_error | unhandled | bad_output
    error: str = ""


@dataclass
class Report:
    seed: int
    requested: int
    slow_seconds: float
    outcomes: list[Outcome] = field(default_factory=list)
    stopped_early: bool = False  # the --max-seconds budget ran out
    loadavg: tuple[str, str] = ("", "")  # /proc/loadavg at start and end

    @property
    def unhandled(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result in ("unhandled", "bad_output")]

    @property
    def slow(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.seconds > self.slow_seconds]

    @property
    def ok(self) -> bool:
        return not self.unhandled and not self.slow


# -- corpus and mutations -------------------------------------------------------------------------
def load_corpus(root: Path = ROOT) -> list[Fixture]:
    fixtures = []
    for folder, pattern in CORPUS:
        for path in sorted((root / folder).glob(pattern)):
            if path.is_file():
                fixtures.append(Fixture(_kind(path), f"{folder}/{path.name}", path.read_bytes()))
    return fixtures


def _kind(path: Path) -> str:
    if path.suffix == ".html":
        return "page"
    return "sitemap" if path.name.startswith("sitemap") else "feed"


def _position(data: bytes, rng: random.Random) -> int:
    return rng.randrange(len(data) + 1)


def _text_position(data: bytes, rng: random.Random) -> int:
    """Just after a random '>': inside element content, where references are read."""
    ends = [m.end() for m in re.finditer(rb">", data)]
    return rng.choice(ends) if ends else _position(data, rng)


def byte_flip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    spots = [rng.randrange(len(out)) for _ in range(rng.randint(1, 8))] if out else []
    for at in spots:
        out[at] ^= rng.randint(1, 255)
    return bytes(out), f"flip@{','.join(map(str, spots))}"


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = _position(data, rng)
    return data[:at], f"truncate@{at}"


def delete_tag(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    tags = list(_TAG.finditer(data))
    if not tags:
        return truncate(data, rng)
    tag = rng.choice(tags)
    return data[: tag.start()] + data[tag.end():], f"delete-tag {tag.group(0)[:40]!r}@{tag.start()}"


def _inserter(name: str, choices: tuple[bytes, ...], in_text: bool = True) -> Mutator:
    def insert(data: bytes, rng: random.Random) -> tuple[bytes, str]:
        piece = rng.choice(choices)
        at = _text_position(data, rng) if in_text else _position(data, rng)
        return data[:at] + piece + data[at:], f"{name} {piece[:40]!r}@{at}"

    return insert


def reencode(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Other bytes for the same text, a declaration that may lie about them, maybe a wrong BOM."""
    encoding, declared = rng.choice(ENCODINGS), rng.choice(DECLARED)
    out = _DECLARATION.sub(f'encoding="{declared}"'.encode(), data.decode("utf-8", "replace"
                                                                           ).encode(encoding, "replace"), count=1)
    bom = rng.choice((b"", *BOMS))
    return bom + out, f"reencode {encoding} declared {declared} bom {bom!r}"


def repeat_slice(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    start = _position(data, rng)
    end = min(len(data), start + rng.randint(1, MAX_REPEAT_BYTES))
    times = rng.randint(2, 20)
    return data[:end] + data[start:end] * times + data[end:], f"repeat {start}:{end} x{times}"


def deep_nesting(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    depth, tag = rng.randint(100, 3000), rng.choice((b"div", b"title", b"item", b"b"))
    at = _text_position(data, rng)
    piece = b"<" + tag + b">"
    return data[:at] + piece * depth + data[at:], f"nest <{tag.decode()}> x{depth}@{at}"


MUTATORS: dict[str, Mutator] = {
    "byte_flip": byte_flip, "truncate": truncate, "delete_tag": delete_tag,
    "charref": _inserter("charref", HOSTILE_CHARREFS), "entity": _inserter("entity", ENTITIES),
    "element": _inserter("element", ELEMENTS), "raw_bytes": _inserter("raw", RAW_BYTES, in_text=False),
    "reencode": reencode, "repeat": repeat_slice, "nest": deep_nesting,
}  # fmt: skip


def make_case(corpus: list[Fixture], seed: int, number: int, parsers: dict[str, Parser]) -> Case:
    """Case ``number`` of ``seed``: rebuilt from those two numbers alone."""
    rng = random.Random(f"{seed}:{number}")
    kind = rng.choice(sorted({f.kind for f in corpus}))  # each kind as often, whatever its fixture count
    fixture = rng.choice([f for f in corpus if f.kind == kind])
    parser = fixture.kind if fixture.kind in parsers else rng.choice(sorted(parsers))
    if rng.random() < CROSS_PARSER_SHARE:
        parser = rng.choice(sorted(parsers))
    data, mutations = fixture.data, []
    for name in rng.sample(sorted(MUTATORS), rng.randint(1, 3)):
        data, described = MUTATORS[name](data, rng)
        mutations.append(described)
    return Case(number, parser, fixture.name, tuple(mutations), data)


# -- parsers and checks ---------------------------------------------------------------------------
def default_parsers() -> dict[str, Parser]:
    from newsrag.ingest.parse import extract_article, parse_feed, parse_sitemap

    return {
        "feed": lambda data: parse_feed(data, source_id="fuzz", feed_url=FEED_URL),
        "sitemap": lambda data: parse_sitemap(data, source_id="fuzz", base_url=FEED_URL),
        "page": lambda data: extract_article(data, url=PAGE_URL, source_id="fuzz"),
    }


def strings(value: Any) -> Iterator[str]:
    """Every string a parse result holds (articles, entries, failures, metadata)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            yield from strings(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings(getattr(value, f.name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def run_case(case: Case, parsers: dict[str, Parser], clock: Clock = time.perf_counter) -> Outcome:
    started = clock()
    try:
        result = parsers[case.parser](case.data)
    except SourceError as exc:
        return Outcome(case, clock() - started, "source_error", exc.reason[:200])
    except ItemError as exc:
        return Outcome(case, clock() - started, "items_failed", exc.reason[:200])
    except Exception as exc:  # noqa: BLE001 - what the harness is looking for
        return Outcome(case, clock() - started, "unhandled", _describe(exc))
    seconds = clock() - started
    for text in strings(result):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return Outcome(case, seconds, "bad_output", f"not valid UTF-8 in the result: {exc}")
    return Outcome(case, seconds, "items_failed" if getattr(result, "failures", None) else "ok")


def warm_up(parsers: dict[str, Parser], corpus: list[Fixture]) -> None:
    """Each parser once on each unmutated fixture of its kind (and the warm-up page): imports and
    one-time library initialisation stay out of the per-case times. Outcomes are not counted."""
    samples = [(f.kind, f.data) for f in corpus] + [("page", WARM_UP_PAGE)]
    for number, (kind, data) in enumerate(samples):
        if kind in parsers:
            run_case(Case(-1 - number, kind, "warm-up", (), data), parsers)


def _describe(exc: BaseException) -> str:
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    at = f" at {Path(where.filename).name}:{where.lineno} {where.name}" if where else ""
    return f"{type(exc).__name__}: {str(exc)[:200]}{at}"


def fuzz(cases: int, seed: int = 0, *, max_seconds: float | None = None, slow_seconds: float = 5.0,
         parsers: dict[str, Parser] | None = None, corpus: list[Fixture] | None = None,
         clock: Clock = time.perf_counter, only: int | None = None) -> Report:
    """Run cases 0..cases-1 of ``seed`` (or case ``only``), stopping early after ``max_seconds``."""
    parsers = parsers or default_parsers()
    corpus = corpus or load_corpus()
    report = Report(seed, 1 if only is not None else cases, slow_seconds)
    report.loadavg = (load_average_text(), "")
    warm_up(parsers, corpus)
    started = clock()
    for number in [only] if only is not None else range(cases):
        if max_seconds is not None and clock() - started >= max_seconds:
            report.stopped_early = True
            break
        report.outcomes.append(run_case(make_case(corpus, seed, number, parsers), parsers, clock))
    report.loadavg = (report.loadavg[0], load_average_text())
    return report


# -- reporting ------------------------------------------------------------------------------------
def summary(report: Report) -> dict[str, Any]:
    rows = {}
    by_parser: dict[str, list[Outcome]] = {}
    for o in report.outcomes:
        by_parser.setdefault(o.case.parser, []).append(o)
    for name, outcomes in sorted(by_parser.items()) + [("all", report.outcomes)]:
        counts = Counter(o.result for o in outcomes)
        times = [o.seconds for o in outcomes]
        ms = summarize([t * 1000 for t in times], digits=1)
        rows[name] = {"cases": len(outcomes), **{k: counts.get(k, 0) for k in RESULTS},
                      "slow": sum(t > report.slow_seconds for t in times),
                      "p50_ms": ms.get("p50", 0.0), "p99_ms": ms.get("p99", 0.0), "max_ms": ms.get("max", 0.0)}
    slowest = max(report.outcomes, key=lambda o: o.seconds, default=None)
    return {"seed": report.seed, "requested": report.requested, "cases_run": len(report.outcomes),
            "stopped_early": report.stopped_early, "slow_seconds": report.slow_seconds,
            "loadavg_start": report.loadavg[0], "loadavg_end": report.loadavg[1], "rows": rows,
            "slowest": _problem(slowest, report) if slowest else None,
            "problems": [_problem(o, report) for o in _problems(report)]}


def _problems(report: Report) -> list[Outcome]:
    """Unhandled, bad and slow cases, each once, in case order."""
    flagged = {id(o) for o in report.unhandled + report.slow}
    return [o for o in report.outcomes if id(o) in flagged]


def _problem(o: Outcome, report: Report) -> dict[str, Any]:
    slow = "slow" if o.seconds > report.slow_seconds else ""
    problem = o.result if o.result in ("unhandled", "bad_output") else slow
    return {"case": o.case.number, "parser": o.case.parser, "fixture": o.case.fixture, "problem": problem,
            "mutations": list(o.case.mutations), "result": o.result, "error": o.error,
            "seconds": round(o.seconds, 3),
            "reproduce": f"bench/fuzz.py --seed {report.seed} --case {o.case.number}"}


def render(res: dict[str, Any]) -> str:
    columns = ("cases", *RESULTS, "slow", "p50_ms", "p99_ms", "max_ms")
    lines = [f"{'parser':<8}" + "".join(f"{c:>13}" for c in columns)]
    lines += [f"{name:<8}" + "".join(f"{row[c]:>13}" for c in columns) for name, row in res["rows"].items()]
    lines.append(f"cases run {res['cases_run']} of {res['requested']} (seed {res['seed']})"
                 + (", stopped by --max-seconds" if res["stopped_early"] else "")
                 + f"; load average {res['loadavg_start']} -> {res['loadavg_end']}")
    if res["slowest"]:
        s = res["slowest"]
        lines.append(f"slowest case {s['case']} ({s['parser']}, {s['fixture']}): {s['seconds']} s")
    for p in res["problems"]:
        lines.append(f"{p['problem'].upper()} case {p['case']} ({p['parser']}, {p['fixture']}, "
                     f"{p['seconds']} s, {p['result']}): {p['error']}\n    mutations: {'; '.join(p['mutations'])}"
                     f"\n    reproduce: {p['reproduce']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, parsers: dict[str, Parser] | None = None,
         clock: Clock = time.perf_counter) -> int:
    parser = argparse.ArgumentParser(prog="bench/fuzz.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000, help="number of cases (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=None, help="stop starting cases after this")
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="a case over this is slow (default 5)")
    parser.add_argument("--case", type=int, default=None, help="run only this case, with its traceback")
    parser.add_argument("--save", type=Path, default=None, help="write the bytes of problem cases here")
    parser.add_argument("--json", action="store_true", help="print one JSON line of results at the end")
    args = parser.parse_args(argv)
    if args.cases < 1 or (args.case is not None and args.case < 0):
        parser.error("--cases must be >= 1 and --case >= 0")
    report = fuzz(args.cases, args.seed, max_seconds=args.max_seconds, slow_seconds=args.slow_seconds,
                  parsers=parsers, clock=clock, only=args.case)
    res = summary(report)
    print(render(res))
    if args.case is not None:
        _explain(report, parsers)
    if args.save:
        _save(report, args.save)
    if args.json:
        print(json.dumps(res))
    return 0 if report.ok else 1


def _explain(report: Report, parsers: dict[str, Parser] | None) -> None:
    """The one case again, letting its exception show its whole traceback."""
    case = report.outcomes[0].case
    print(f"case {case.number}: {case.parser} on {case.fixture}, {len(case.data)} bytes; "
          f"mutations: {'; '.join(case.mutations)}")
    try:
        (parsers or default_parsers())[case.parser](case.data)
    except (SourceError, ItemError) as exc:
        print(f"handled: {type(exc).__name__}: {exc}")
    except Exception:  # noqa: BLE001 - shown, that is the point of --case
        traceback.print_exc(file=sys.stdout)


def _save(report: Report, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for o in _problems(report):
        (folder / f"seed{report.seed}-case{o.case.number}.bin").write_bytes(o.case.data)


if __name__ == "__main__":
    sys.exit(main())
