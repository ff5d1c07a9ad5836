"""bench/fuzz.py: 500 seeded cases through the real parsers find no unhandled exception, and the
harness itself cannot pass silently (a broken parser, bad output and a slow case are all reported)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from newsrag.core.errors import ItemError, SourceError
from newsrag.ingest.models import Article
from tests.bench.conftest import load_script

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fuzz() -> ModuleType:
    return load_script("fuzz")


def test_500_seeded_cases_have_no_unhandled_exception(fuzz: ModuleType) -> None:
    report = fuzz.fuzz(500, seed=0)
    problems = fuzz.summary(report)["problems"]
    assert len(report.outcomes) == 500 and not report.stopped_early
    assert [p for p in problems if p["problem"] != "slow"] == []  # no unhandled, no bad output
    kinds = {o.case.parser for o in report.outcomes}
    results = {o.result for o in report.outcomes}
    assert kinds == {"feed", "page", "sitemap"} and {"ok", "items_failed", "source_error"} <= results


def test_the_mutations_the_issue_names_are_generated(fuzz: ModuleType) -> None:
    corpus, parsers = fuzz.load_corpus(), fuzz.default_parsers()
    cases = [fuzz.make_case(corpus, 0, n, parsers) for n in range(500)]
    described = " ".join(m for c in cases for m in c.mutations)
    for needle in ("flip@", "truncate@", "delete-tag", "&#xD800;", "&#99999999999;", "&#x110000;", "&#0;",
                   "<width></width>", "reencode utf-16", "reencode latin-1", "bom b'\\xef\\xbb\\xbf'"):
        assert needle in described, needle
    assert {f.kind for f in corpus} == {"feed", "page", "sitemap"}


def test_a_case_is_rebuilt_from_its_seed_and_number_alone(fuzz: ModuleType) -> None:
    corpus, parsers = fuzz.load_corpus(), fuzz.default_parsers()
    first, again = fuzz.make_case(corpus, 7, 123, parsers), fuzz.make_case(corpus, 7, 123, parsers)
    assert first == again
    assert fuzz.make_case(corpus, 7, 124, parsers) != first and fuzz.make_case(corpus, 8, 123, parsers) != first


def broken_parsers(fuzz: ModuleType, **override: Callable[[bytes], Any]) -> dict[str, Callable[[bytes], Any]]:
    return {**fuzz.default_parsers(), **override}


def test_a_broken_parser_is_reported_as_unhandled_with_a_reproduction(
        fuzz: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(data: bytes) -> Any:
        raise KeyError("deliberate")

    code = fuzz.main(["--cases", "30", "--seed", "5"], parsers=broken_parsers(fuzz, feed=broken))
    out = capsys.readouterr().out
    assert code == 1
    assert "UNHANDLED case" in out and "KeyError: 'deliberate'" in out
    report = fuzz.fuzz(30, seed=5, parsers=broken_parsers(fuzz, feed=broken))
    unhandled = report.unhandled
    assert unhandled and {o.case.parser for o in unhandled} == {"feed"}
    assert f"reproduce: bench/fuzz.py --seed 5 --case {unhandled[0].case.number}" in out


def test_named_errors_are_handled_not_unhandled(fuzz: ModuleType) -> None:
    def source_error(data: bytes) -> Any:
        raise SourceError("s", "not a feed")

    def item_error(data: bytes) -> Any:
        raise ItemError("s", "i", "no text")

    report = fuzz.fuzz(40, seed=1, parsers={"feed": source_error, "page": item_error, "sitemap": source_error})
    assert report.ok and {o.result for o in report.outcomes} == {"source_error", "items_failed"}


def test_a_lone_surrogate_in_a_result_is_bad_output(fuzz: ModuleType) -> None:
    def leaky(data: bytes) -> Article:
        return Article(source_id="s", url="https://x.example.com/a", title="bad \ud800", text="t")

    report = fuzz.fuzz(10, seed=2, parsers=broken_parsers(fuzz, page=leaky))
    bad = [o for o in report.outcomes if o.result == "bad_output"]
    assert bad and not report.ok and all(o.case.parser == "page" for o in bad)
    assert "surrogates not allowed" in bad[0].error


def ticking_clock(step: float) -> Callable[[], float]:
    ticks: Iterator[int] = itertools.count()
    return lambda: next(ticks) * step


def test_a_slow_case_is_reported_and_fails_the_run(fuzz: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    code = fuzz.main(["--cases", "3", "--slow-seconds", "5"], clock=ticking_clock(6.0))  # every case takes 6 s
    out = capsys.readouterr().out
    assert code == 1 and "UNHANDLED" not in out and out.count("SLOW case") == 3
    report = fuzz.fuzz(3, parsers=None, clock=ticking_clock(6.0), slow_seconds=5.0)
    assert len(report.slow) == 3 and not report.ok


def test_the_time_budget_stops_starting_cases(fuzz: ModuleType) -> None:
    report = fuzz.fuzz(100, seed=3, max_seconds=10, clock=ticking_clock(1.0), slow_seconds=5.0)
    assert report.stopped_early and 0 < len(report.outcomes) < 100
    assert fuzz.summary(report)["stopped_early"] is True


def test_one_case_again_shows_its_traceback(fuzz: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(data: bytes) -> Any:
        raise ZeroDivisionError("deep inside")

    parsers = {"feed": broken, "page": broken, "sitemap": broken}
    assert fuzz.main(["--seed", "4", "--case", "17"], parsers=parsers) == 1
    out = capsys.readouterr().out
    assert "cases run 1 of 1" in out and "Traceback" in out and "ZeroDivisionError: deep inside" in out
