"""What an evaluation run says to people: the notification's ``(subject, body, level)`` and the
terminal summary. Delivery is :mod:`newsrag.infra.notify`'s."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from newsrag.evaluation.models import EvalRun
from newsrag.infra.notify import Level


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def headline_rows(run: EvalRun, previous: EvalRun | None = None) -> list[tuple[str, str, str, str]]:
    """``(metric, mean, "[low, high]", delta vs previous)`` per aggregate, as text (CLI, messages)."""
    rows = []
    for name, agg in run.aggregates.items():
        base = previous.aggregates.get(name) if previous is not None else None
        delta = "" if base is None or base.mean is None or agg.mean is None else f"{agg.mean - base.mean:+.3f}"
        rows.append((name, _fmt(agg.mean), f"[{_fmt(agg.low)}, {_fmt(agg.high)}]", delta))
    return rows


def run_message(run: EvalRun, report_path: str | Path | None = None, baseline: EvalRun | None = None,
                report_error: str | None = None) -> tuple[str, str, Level]:
    """``(subject, body, level)`` describing a run: its regressions (if any), every metric with its
    interval and its change against the baseline, and where the report is (or why it is not)."""
    regression = run.status == "regression"
    verdict = "REGRESSION" if regression else run.status
    subject = (f"newsrag eval {verdict}: run {run.run_id} (prompt {run.prompt_name} {run.prompt_version}, "
               f"{run.generator}/{run.model})")
    lines = [f"run: {run.run_id}  started {run.started_at.isoformat(timespec='seconds')}",
             f"prompt: {run.prompt_name} version {run.prompt_version}; generator {run.generator} ({run.model})",
             f"index: {run.index.collection} ({run.index.object_count} objects)",
             f"golden set: {run.golden_path} ({len(run.results)} questions)"]
    if baseline is not None:
        lines.append(f"baseline: run {baseline.run_id} (prompt {baseline.prompt_name} {baseline.prompt_version})")
    if run.regressions:
        lines += ["", "regressions:", *(f"  - {r}" for r in run.regressions)]
    lines += ["", "metrics: mean [95% CI]" + (" (change vs baseline)" if baseline else "")]
    lines += [f"  {name}: {value} {ci}" + (f" ({delta})" if delta else "")
              for name, value, ci, delta in headline_rows(run, baseline)]
    lines += ["", f"report: {report_path}" if report_path else
              f"report: NOT written: {report_error}" if report_error else "report: not written"]
    return subject, "\n".join(lines), "error" if regression else "info"


def print_summary(console: Console, run: EvalRun, previous: EvalRun | None = None,
                  report_path: str | Path | None = None, notify_failures: Sequence[str] = ()) -> None:
    """The run on a terminal: headline table (metric, mean, interval, change vs ``previous``),
    failed-question counts, regressions, notification failures and the report's path."""
    table = Table("metric", "mean", "95% CI", f"Δ vs {previous.run_id}" if previous else "Δ vs previous",
                  title=f"run {run.run_id} · {run.prompt_name} {run.prompt_version} · {run.status}")
    for row in headline_rows(run, previous):
        table.add_row(*row)
    console.print(table)
    failed = sum(1 for r in run.results if r.failure_reason)
    errors = sum(1 for r in run.results if r.error)
    console.print(f"{len(run.results)} questions, {failed} failed, {errors} with errors", highlight=False)
    for reason in run.regressions:
        console.print(f"[bold red]regression:[/] {escape(reason)}", highlight=False)
    for failure in notify_failures:
        console.print(f"[yellow]notification failed:[/] {escape(failure)}", highlight=False)
    console.print(f"report: {report_path}" if report_path else "report: not written", highlight=False)
