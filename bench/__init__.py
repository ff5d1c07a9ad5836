"""Benchmarks of newsrag (not installed with the package): each script prints ratios measured in one run.

The scripts run as files (``.venv/bin/python bench/query.py``); what they share lives in
:mod:`bench.harness`, and the query-latency benchmark's parts in :mod:`bench.query_latency`.
"""
