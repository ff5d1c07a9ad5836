#!/usr/bin/env python
"""Query-latency benchmark: raw Weaviate hybrid and raw query embedding vs. the app's /v1/search and
/v1/ask over HTTP, at several collection sizes, in one run.

    .venv/bin/python bench/query.py [--sizes 10000,50000] [--queries 200] [--corpus PATH] [--json]

What it measures and how: bench/query_latency/__init__.py; its parts live in that package.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.query_latency.main import main

if __name__ == "__main__":
    sys.exit(main())
