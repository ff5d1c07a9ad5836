"""The evaluation report: numbers, order, comparison, escaping, self-containment, index, history."""

from __future__ import annotations

import html as htmllib
import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest

from newsrag.evaluation.models import EvalRun, MetricValue
from newsrag.evaluation.report import metric_order, runs_in, write_report
from newsrag.evaluation.stats import paired_bootstrap_diff
from tests.evaluation.factories import (
    BASELINE_CHANGES,
    CURRENT,
    OLDER,
    PREVIOUS,
    T0,
    WORST_ORDER,
    XSS,
    make_run,
    scenario,
)

pytestmark = pytest.mark.unit

MINUS = "\u2212"


def build(out: Path) -> dict[str, Any]:
    """Two earlier runs in ``out``, then the current run with a compare run; history=None."""
    older, current, baseline = scenario()
    for run in older:
        write_report(run, None, out)
    path = write_report(current, None, out, compare_run=baseline)
    return {"out": out, "path": path, "html": path.read_text(encoding="utf-8"),
            "current": current, "baseline": baseline}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The scenario's reports, shared read-only by the tests of this module."""
    return build(tmp_path_factory.mktemp("reports"))


def card(html: str, metric: str) -> str:
    m = re.search(rf'<article class="card panel" data-metric="{re.escape(metric)}">(.*?)</article>', html, re.DOTALL)
    assert m, f"no card for {metric}"
    return m.group(1)


def delta(card_html: str, what: str) -> tuple[str, str] | None:
    """``(class, text)`` of the card's "vs previous" / "vs best" figure, None when there is none."""
    m = re.search(rf'<div class="delta (\w+)" data-delta="{what}"[^>]*>(.*?)</div>', card_html, re.DOTALL)
    if not m:
        return None
    text = re.sub(r"<[^>]+>", "", m.group(2))
    for noise in (f"vs {what}", "▲", "▼", "→"):
        text = text.replace(noise, "")
    return m.group(1), " ".join(text.split())


def section(html: str, ident: str) -> str:
    m = re.search(rf'<section id="{ident}".*?</section>', html, re.DOTALL)
    assert m, f"no section {ident}"
    return m.group(0)


def text_of(fragment: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_writes_report_json_and_index(built: dict[str, Any]) -> None:
    out, path = built["out"], built["path"]
    assert path == out / "2026-03-04-a" / "report.html"
    assert (out / "2026-03-04-a" / "report.json").is_file()
    assert (out / "index.html").is_file()
    assert not list(out.rglob("*.tmp"))


def test_headline_values_intervals_and_methods(built: dict[str, Any]) -> None:
    html = built["html"]
    hit = card(html, "hit@k")
    assert ">0.800<" in hit and "0.750 – 0.850" in hit and "offline:hit@k" in hit
    faith = card(html, "faithfulness")
    assert ">0.750<" in faith and "0.700 – 0.800" in faith and "offline:faithfulness" in faith
    judge = card(html, "faithfulness_judge")
    assert ">0.790<" in judge and "judge:gpt-judge-1" in judge and "Faithfulness (judge)" in judge
    latency = card(html, "latency_ms")
    assert "1,200" in latency and "1,120 ms – 1,280 ms" in latency and "offline:latency_ms" in latency
    assert "Custom freshness" in card(html, "custom_freshness")
    assert "n 12 · 1 n/a" in text_of(hit)


def test_cards_put_known_metrics_first_in_order(built: dict[str, Any]) -> None:
    order = re.findall(r'<article class="card panel" data-metric="([^"]+)"', built["html"])
    assert order == ["hit@k", "recall@k", "mrr", "ndcg@k", "faithfulness", "faithfulness_judge",
                     "answer_relevance", "correctness", "citation_precision", "abstention_accuracy",
                     "latency_ms", "custom_freshness"]
    assert metric_order(["zeta", "latency_ms", "mrr_judge", "alpha", "mrr", "hit@k"]) == [
        "hit@k", "mrr", "mrr_judge", "latency_ms", "alpha", "zeta"]


def test_deltas_vs_previous_and_best(built: dict[str, Any]) -> None:
    html = built["html"]
    # hit@k: previous 0.70 -> +0.10 better; best 0.90 (the older run) -> -0.10 worse
    assert CURRENT["hit@k"] - PREVIOUS["hit@k"] == pytest.approx(0.10)
    assert delta(card(html, "hit@k"), "previous") == ("good", "+0.100")
    assert delta(card(html, "hit@k"), "best") == ("bad", f"{MINUS}0.100")
    # faithfulness: previous 0.70 is also the best -> +0.05 on both
    assert delta(card(html, "faithfulness"), "previous") == ("good", "+0.050")
    assert delta(card(html, "faithfulness"), "best") == ("good", "+0.050")
    # abstention: previous 0.95 is the best -> -0.05 both
    assert delta(card(html, "abstention_accuracy"), "previous") == ("bad", f"{MINUS}0.050")
    assert delta(card(html, "abstention_accuracy"), "best") == ("bad", f"{MINUS}0.050")
    # latency: lower is better. previous 1500 -> -300 ms is good; best is the lowest (900) -> +300 ms bad
    assert CURRENT["latency_ms"] - OLDER["latency_ms"] == pytest.approx(300)
    assert delta(card(html, "latency_ms"), "previous") == ("good", f"{MINUS}300 ms")
    assert delta(card(html, "latency_ms"), "best") == ("bad", "+300 ms")
    # the earlier runs did not measure recall@k: no delta at all
    assert delta(card(html, "recall@k"), "previous") is None
    assert delta(card(html, "recall@k"), "best") is None


def test_trend_charts_come_from_the_reports_in_out_dir(built: dict[str, Any]) -> None:
    trends = section(built["html"], "trends")
    assert trends.count("<svg") == 6  # the metrics the earlier runs measured too
    titles = re.findall(r"<title id=\"[^\"]+\">([^<]+)</title>", trends)
    assert "Hit@k over the last 3 run(s); this run highlighted" in titles
    assert "Latency over the last 3 run(s); this run highlighted" in titles
    assert "No earlier run to compare with yet for Recall@k" in text_of(trends)
    assert all(r.run_id for r in runs_in(built["out"]))
    assert [r.run_id for r in runs_in(built["out"])] == ["2026-03-02-a", "2026-03-03-a", "2026-03-04-a"]


def test_charts_are_inline_accessible_svg_with_unique_ids(built: dict[str, Any]) -> None:
    html = built["html"]
    svgs = re.findall(r"<svg\b[^>]*>", html)
    assert len(svgs) == 7  # six trends and the comparison's forest plot
    assert all('role="img"' in s and "aria-labelledby" in s for s in svgs)
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html and "<metadata>" not in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    referenced = set(re.findall(r'href="#([^"]+)"', html)) | set(re.findall(r"url\(#([^)]+)\)", html))
    assert referenced <= set(ids)


def test_per_tag_and_per_type_tables(built: dict[str, Any]) -> None:
    breakdown = section(built["html"], "breakdown")
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr><th scope="row">([^<]+)</th>.*?</tr>', breakdown, re.DOTALL)}
    assert set(rows) == {"economy", "politics", "sports", "fact", "multi-hop", "unanswerable"}
    assert text_of(rows["politics"]) == "politics 8 0.920 0.810 1,100 ms"  # 8 questions carry the tag
    assert text_of(rows["economy"]) == "economy 2 0.550 0.520 1,400 ms"
    assert text_of(rows["multi-hop"]) == "multi-hop 1 0.400 0.620 —"
    assert text_of(rows["unanswerable"]) == "unanswerable 1 — — 1.000"
    # latency: the slowest tag is the reddest, the fastest the greenest
    assert "hsl(8," in rows["economy"].split("0.520")[1]
    assert "hsl(140," in rows["sports"].split("0.680")[1]


def test_worst_questions_ordered_errors_failures_then_lowest_faithfulness(built: dict[str, Any]) -> None:
    worst = section(built["html"], "worst")
    assert re.findall(r'<tr data-case="([^"]+)"', worst) == WORST_ORDER
    first_failed = worst.split('data-case="q-fail"')[1].split("</tr>")[0]
    assert "no relevant chunk in the top 8" in first_failed and "Article 4" in first_failed
    assert "0.330" in first_failed and 'class="mark no"' in first_failed
    assert "judge timeout after 30 s" in worst and "nothing retrieved" in worst
    ok_row = worst.split('data-case="q-ok-1"')[1].split("</tr>")[0]
    assert 'href="https://news.example/a/1"' in ok_row and 'class="mark yes"' in ok_row
    assert "Snippet of article 1" in ok_row


def test_comparison_section_with_paired_difference(built: dict[str, Any]) -> None:
    comp = section(built["html"], "comparison")
    current, baseline = built["current"], built["baseline"]
    assert "news-answer v2 · arm A" in comp and "news-answer v3 · arm B" in comp
    row = re.search(r'<tr data-metric="faithfulness">.*?</tr>', comp, re.DOTALL).group(0)
    base_values = [q.metrics["faithfulness"].value for q in baseline.results]
    run_values = [q.metrics["faithfulness"].value for q in current.results]
    expected = paired_bootstrap_diff(base_values, run_values, n_resamples=2000)
    assert expected is not None
    # the paired mean: the per-question differences over the 10 questions with a value on both sides
    by_case = {q.case_id: q.metrics["faithfulness"].value for q in current.results}
    changes = [by_case[cid] - v["faithfulness"] for cid, v in BASELINE_CHANGES.items() if "faithfulness" in v]
    assert expected.diff == pytest.approx(sum(changes) / 10) == pytest.approx(0.121)
    ci = f"{expected.low:+.3f} … {expected.high:+.3f}".replace("-", MINUS)
    assert text_of(row) == f"Faithfulness 0.630 0.750 +0.120 {ci} no clear difference"
    assert "no pairs" in re.search(r'<tr data-metric="recall@k">.*?</tr>', comp, re.DOTALL).group(0)
    changed = re.findall(r'<tr data-case="([^"]+)"', comp)
    assert changed == ["q-fail", "q-low-faith", "q-ok-2", "q-ok-4", "q-ok-5", "q-tie-a", "q-tie-b"]
    fail_row = text_of(comp.split('data-case="q-fail"')[1].split("</tr>")[0])
    assert f"Hit@k 1.000 → 0.000 {MINUS}1.000" in fail_row and f"nDCG@k 0.450 → 0.000 {MINUS}0.450" in fail_row
    assert "Faithfulness 0.700 → 0.200" in text_of(comp.split('data-case="q-low-faith"')[1].split("</tr>")[0])
    assert "Paired bootstrap differences" in comp  # the forest plot's title


def test_untrusted_text_is_escaped(built: dict[str, Any]) -> None:
    html = built["html"]
    assert XSS not in html and "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Who won the vote?" in html
    assert "<img" not in html.lower() and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;b&gt;Hostile&lt;/b&gt; title" in html
    assert "javascript:" not in html  # a javascript: URL never becomes a link, and is not shown


class _Resources(HTMLParser):
    LOADERS: ClassVar[set[str]] = {"src", "srcset", "href", "xlink:href", "data", "poster", "action", "background"}

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.loaded: list[tuple[str, str, str]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in self.LOADERS and value and not value.startswith("#"):
                if tag == "a" and name == "href":
                    self.links.append(value)
                else:
                    self.loaded.append((tag, name, value))


@pytest.mark.parametrize("page", ["report", "index"])
def test_nothing_is_loaded_from_anywhere(built: dict[str, Any], page: str) -> None:
    html = built["html"] if page == "report" else (built["out"] / "index.html").read_text()
    parser = _Resources()
    parser.feed(html)
    assert not {"script", "link", "img", "iframe", "object", "embed", "source", "video", "audio"} & set(parser.tags)
    assert parser.loaded == []
    assert not re.search(r"url\(\s*['\"]?(?!#)", html) and "@import" not in html
    assert "default-src 'none'" in html  # and the CSP forbids loading anything anyway
    if page == "report":  # article URLs are plain links, to http(s) only
        assert "https://news.example/a/1" in parser.links
        assert all(link.startswith(("https://", "http://", "../index.html")) for link in parser.links)
    # the only absolute URLs anywhere are the article links (no xmlns, no metadata, no fonts)
    assert {u for u in re.findall(r"https?://[^\s\"'<]+", html) if not u.startswith("https://news.example/a/")} == set()


def test_report_json_round_trips(built: dict[str, Any]) -> None:
    text = (built["path"].parent / "report.json").read_text(encoding="utf-8")
    assert EvalRun.model_validate_json(text) == built["current"]
    assert json.loads(text)["run_id"] == "2026-03-04-a"


def test_index_lists_all_runs_newest_first(built: dict[str, Any]) -> None:
    out = built["out"]
    index = (out / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'<tr data-run="([^"]+)"', index) == ["2026-03-04-a", "2026-03-03-a", "2026-03-02-a"]
    links = re.findall(r'<a class="run-id" href="([^"]+)"', index)
    assert links == ["2026-03-04-a/report.html", "2026-03-03-a/report.html", "2026-03-02-a/report.html"]
    assert all((out / link).is_file() for link in links)
    newest = text_of(index.split('data-run="2026-03-04-a">')[1].split("</tr>")[0])
    assert newest == ("2026-03-04-a 2026-03-04 06:00 UTC regression news-answer v3 A/B arm B extractive "
                      "local-extractive-1 0.800 0.750 0.900")
    assert "3 runs, newest first" in index


def test_first_run_without_history(tmp_path: Path) -> None:
    _, current, _ = scenario()
    html = write_report(current, None, tmp_path).read_text(encoding="utf-8")
    assert delta(card(html, "hit@k"), "previous") is None and delta(card(html, "hit@k"), "best") is None
    assert 'id="comparison"' not in html
    assert section(html, "trends").count("<svg") == 0
    assert "No earlier run to compare with yet for Hit@k" in text_of(section(html, "trends"))


class FakeHistory:
    """The duck-typed history: previous, best (highest mean), trend."""

    def __init__(self) -> None:
        self.prev = make_run("h-prev", T0, {"hit@k": 0.50, "faithfulness": 0.90, "latency_ms": 2000.0})
        self.top = make_run("h-best", T0, {"hit@k": 0.95, "faithfulness": 0.75})
        self.asked: list[str] = []

    def previous(self, run: EvalRun) -> EvalRun:
        return self.prev

    def best(self, metric: str) -> EvalRun | None:
        self.asked.append(metric)
        return self.top

    def trend(self, metric: str, limit: int) -> list[tuple[Any, float | None]]:
        return [(T0 - timedelta(days=d), 0.5 + d / 100) for d in range(5, 0, -1)] + [(T0, None)]


def test_duck_typed_history_is_used(tmp_path: Path) -> None:
    _, current, _ = scenario()
    history = FakeHistory()
    html = write_report(current, history, tmp_path).read_text(encoding="utf-8")
    assert delta(card(html, "hit@k"), "previous") == ("good", "+0.300")
    assert delta(card(html, "hit@k"), "best") == ("bad", f"{MINUS}0.150")
    assert delta(card(html, "faithfulness"), "previous") == ("bad", f"{MINUS}0.150")
    assert delta(card(html, "faithfulness"), "best") == ("flat", "+0.000")  # level with the best run
    assert 'data-delta="best" title="vs h-best"' in card(html, "faithfulness")
    assert delta(card(html, "latency_ms"), "previous") == ("good", f"{MINUS}800 ms")
    assert delta(card(html, "latency_ms"), "best") is None  # best() means highest: not asked for latency
    assert "latency_ms" not in history.asked and "hit@k" in history.asked
    assert "Hit@k over the last 6 run(s)" in html  # five from history (one without a value) + this run


def test_history_naming_this_run_the_best_shows_a_star(tmp_path: Path) -> None:
    _, current, _ = scenario()

    class Mine(FakeHistory):
        def best(self, metric: str) -> EvalRun | None:
            return current

    html = write_report(current, Mine(), tmp_path).read_text(encoding="utf-8")
    assert "★ this run" in card(html, "hit@k")


def test_missing_or_broken_history_falls_back_to_out_dir(tmp_path: Path) -> None:
    built = build(tmp_path)

    class Broken:
        def previous(self, run: EvalRun) -> EvalRun:
            raise RuntimeError("database is locked")

    for history in (object(), Broken()):
        html = write_report(built["current"], history, built["out"]).read_text(encoding="utf-8")
        assert delta(card(html, "hit@k"), "previous") == ("good", "+0.100")
        assert delta(card(html, "hit@k"), "best") == ("bad", f"{MINUS}0.100")
        assert section(html, "trends").count("<svg") == 6


def test_failed_runs_and_other_golden_sets_are_never_previous_or_best(tmp_path: Path) -> None:
    built = build(tmp_path)
    out, current = built["out"], built["current"]
    write_report(make_run("crash", current.started_at - timedelta(hours=1), {"hit@k": 0.99}, status="failed"),
                 None, out)
    other = make_run("other-golden", current.started_at - timedelta(hours=2), {"hit@k": 0.98})
    write_report(other.model_copy(update={"golden_sha256": "0" * 64}), None, out)
    html = write_report(current, None, out).read_text(encoding="utf-8")
    assert delta(card(html, "hit@k"), "previous") == ("good", "+0.100")
    assert delta(card(html, "hit@k"), "best") == ("bad", f"{MINUS}0.100")
    index = (out / "index.html").read_text()
    assert re.findall(r'<tr data-run="([^"]+)"', index)[:3] == ["2026-03-04-a", "crash", "other-golden"]


def test_secret_named_keys_are_redacted(tmp_path: Path) -> None:
    _, current, _ = scenario()
    current.results[0].metrics["faithfulness"] = MetricValue(
        value=0.9, method="judge:m", details={"api_key": "sk-live-123", "Authorization": "Bearer abc", "tokens": 42})
    current.notes.append("judged with a remote model")
    path = write_report(current, None, tmp_path)
    for text in (path.read_text(), (path.parent / "report.json").read_text()):
        assert "sk-live-123" not in text and "Bearer abc" not in text
    data = json.loads((path.parent / "report.json").read_text())
    details = data["results"][0]["metrics"]["faithfulness"]["details"]
    assert details == {"api_key": "[redacted]", "Authorization": "[redacted]", "tokens": 42}
    assert "Secrets (API keys, tokens, passwords) are never included" in path.read_text()
    assert "Note: judged with a remote model" in path.read_text()


def test_methods_footnote_lists_every_metric(built: dict[str, Any]) -> None:
    methods = text_of(section(built["html"], "methods"))
    for metric in CURRENT:
        assert metric in methods
    assert "Latency latency_ms offline:latency_ms lower is better" in methods
    assert "Faithfulness (judge) faithfulness_judge judge:gpt-judge-1 higher is better" in methods


def test_unsafe_run_id_stays_inside_out_dir(tmp_path: Path) -> None:
    run = make_run("../../escape me", T0, {"hit@k": 0.5})
    path = write_report(run, None, tmp_path / "reports")
    assert path.resolve().is_relative_to((tmp_path / "reports").resolve())
    assert runs_in(tmp_path / "reports")[0].run_id == "../../escape me"


def test_header_shows_run_facts(built: dict[str, Any]) -> None:
    header = text_of(re.search(r"<header.*?</header>", built["html"], re.DOTALL).group(0))
    for expected in ("2026-03-04-a", "Started 2026-03-04 06:00 UTC", "took 95 s", "12 questions", "1 errors",
                     "1 failed", "1 abstained", "regression", "hit@k fell below the best run by more than 0.05",
                     "examples/news/golden.jsonl", "sha256 3f7a9c1e5b2d", "NewsChunks", "18,234 objects",
                     "last ingest 2026-03-04 04:00 UTC", "news-answer v3", "A/B arm B", "extractive",
                     "model local-extractive-1", "gpt-judge-1", "hybrid · α 0.5 · top 8",
                     "relative_score · rerank mmr · context"):
        assert expected in header, expected


def test_comparison_without_shared_questions(tmp_path: Path) -> None:
    _, current, baseline = scenario()
    other = baseline.model_copy(update={"results": []})
    comp = section(write_report(current, None, tmp_path, compare_run=other).read_text(), "comparison")
    row = re.search(r'<tr data-metric="hit@k">.*?</tr>', comp, re.DOTALL).group(0)
    assert text_of(row) == f"Hit@k 0.880 0.800 {MINUS}0.080 no pairs"
    assert 'class="num bad"' in row  # a lower hit@k than the baseline
    assert "<svg" not in comp and "No shared question changed." in comp
