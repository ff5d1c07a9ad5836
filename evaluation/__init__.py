"""Evaluation: feedback and answer logs, golden sets, metrics, runs, reports."""
