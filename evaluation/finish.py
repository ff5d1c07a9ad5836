"""After a run: gate it, save it, write its report, notify about a regression (CLI and DAG alike).

:func:`finalize_run`, in this order:

0. redact secrets from its text (errors, failure reasons, metric details, notes:
   :func:`redact_run`; the secrets of the environment the edge captured, ``environ``), so neither
   the history nor the report nor a message holds one;
1. gate the run against the last good run on its golden set (never against ``compare_run``:
   what a report is compared with must not change what counts as a regression);
2. save it in the history (one transaction: earlier runs are never touched);
3. write the report (HTML, JSON, index) with the app's live feedback per prompt version and arm,
   its comparison section against ``compare_run`` when given, else against the gate's baseline;
4. on a regression, notify - once per run: finalizing a run id that the history already holds as
   a regression (a retried DAG task) does not notify again;
5. when the report could not be written, raise :class:`ReportWriteError` naming the report's
   path and the reason (after 4: the run is saved and a regression notified either way).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsrag.core.errors import NewsragError
from newsrag.evaluation.feedback import read_feedback
from newsrag.evaluation.history import HistoryStore
from newsrag.evaluation.messages import run_message
from newsrag.evaluation.models import EvalRun, QuestionResult
from newsrag.evaluation.regression import RegressionSettings, apply_gate
from newsrag.infra.notify import Notifier, notify_all
from newsrag.infra.redaction import environment_secrets, redact_text


@dataclass
class Finalized:
    """What :func:`finalize_run` did: the gate's baseline, the run the report compares with, the
    report's path, whether it notified."""

    baseline: EvalRun | None
    compared: EvalRun | None = None
    report: Path | None = None
    notified: bool = False
    notify_failures: list[str] = field(default_factory=list)


class ReportWriteError(NewsragError):
    """The run's report could not be written. The run itself is saved in the history;
    ``finalized`` tells what :func:`finalize_run` did before raising."""

    def __init__(self, run_id: str, path: Path, reason: str) -> None:
        self.run_id, self.path, self.reason = run_id, path, reason
        self.finalized: Finalized | None = None
        super().__init__(f"report of run {run_id} not written to {path}: {reason} "
                         "(the run is saved in the evaluation history)")


def _redact_tree(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_tree(v, secrets) for k, v in value.items()}
    return [_redact_tree(v, secrets) for v in value] if isinstance(value, list | tuple) else value


def redact_result(r: QuestionResult, secrets: Sequence[str] = ()) -> QuestionResult:
    """``r`` (changed in place) without secrets in the text a failure can put there - its error,
    failure reason and metric details (an exception may quote an API key or a URL with
    credentials): ``secrets`` (the environment's: :func:`~newsrag.infra.redaction.environment_secrets`)
    and any URL ``user:password@`` become ``***`` (:func:`newsrag.infra.redaction.redact_text`)."""
    r.error = redact_text(r.error, secrets) if r.error else r.error
    r.failure_reason = redact_text(r.failure_reason, secrets) if r.failure_reason else r.failure_reason
    for m in r.metrics.values():
        m.details = _redact_tree(m.details, secrets)
    return r


def redact_run(run: EvalRun, environ: Mapping[str, str] | None = None) -> EvalRun:
    """:func:`redact_result` for every question, and the run's regression reasons and notes, with
    the secrets of ``environ`` (the edge's ``Settings.environ``)."""
    secrets = environment_secrets(environ) if environ is not None else []
    for r in run.results:
        redact_result(r, secrets)
    run.regressions = [redact_text(x, secrets) for x in run.regressions]
    run.notes = [redact_text(x, secrets) for x in run.notes]
    return run


def write_run_report(run: EvalRun, history: HistoryStore, out_dir: Path, baseline: EvalRun | None = None,
                     feedback_path: str | Path | None = None) -> Path:
    """The run's report with the live feedback of the store at ``feedback_path`` (the app's:
    :func:`newsrag.evaluation.feedback.feedback_location`; None: no live feedback). Any failure,
    the feedback store's included, is a :class:`ReportWriteError`."""
    from newsrag.evaluation.report import report_dir, write_report  # imported on use: matplotlib

    target = report_dir(out_dir, run.run_id) / "report.html"
    try:
        feedback = read_feedback(feedback_path) if feedback_path is not None else []
        return Path(write_report(run, history, out_dir, compare_run=baseline, feedback=feedback))
    except Exception as exc:
        raise ReportWriteError(run.run_id, target, f"{type(exc).__name__}: {exc}") from exc


def gate_and_save(run: EvalRun, history: HistoryStore, gate: RegressionSettings,
                  environ: Mapping[str, str] | None = None) -> tuple[EvalRun | None, bool]:
    """Steps 0-2: redact (``environ``'s secrets too), gate against the last good run, save. Returns
    the baseline and whether a regression must be notified (not when the history already held this
    run id as one: a retried task). The history's ``StoreError`` when the run could not be saved."""
    redact_run(run, environ)
    baseline = history.last_good(run.golden_sha256, before=run.started_at)
    apply_gate(run, baseline, gate)
    earlier = history.get(run.run_id)
    history.save(run)
    return baseline, run.status == "regression" and not (earlier is not None and earlier.status == "regression")


def notify_regression(run: EvalRun, notifiers: Sequence[Notifier], baseline: EvalRun | None = None,
                      report: Path | None = None, report_error: str | None = None,
                      environ: Mapping[str, str] | None = None) -> list[str]:
    """Step 4: the run's message to every notifier (``environ``'s secrets redacted); the failures
    (notifying never raises)."""
    subject, body, level = run_message(run, report, baseline, report_error)
    return notify_all(notifiers, subject, body, level=level, environ=environ)


def finalize_run(run: EvalRun, history: HistoryStore, *, out_dir: Path, gate: RegressionSettings,
                 notifiers: Sequence[Notifier], compare_run: EvalRun | None = None,
                 feedback_path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Finalized:
    """Gate, save, report and notify (see the module's docstring); ``environ``: the environment the
    edge captured, whose secrets are redacted. Raises :class:`ReportWriteError` (with ``finalized``
    set) when the report could not be written, and the history's ``StoreError`` when the run could
    not be saved (nothing is then notified)."""
    baseline, first_regression = gate_and_save(run, history, gate, environ)
    done, error = Finalized(baseline, compare_run or baseline), None
    try:
        done.report = write_run_report(run, history, out_dir, done.compared, feedback_path)
    except ReportWriteError as exc:
        error = exc
    if first_regression:
        done.notify_failures = notify_regression(run, notifiers, baseline, done.report,
                                                 error.reason if error else None, environ)
        done.notified = True
    if error is not None:
        error.finalized = done
        raise error
    return done
