"""Command-line plumbing of the bench scripts: input globs, JSONL objects, the progress log (on
stderr, so stdout keeps the tables and the ``--json`` line), and the scratch folder of a run."""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Log = Callable[[str], None]


def logger(tag: str, clock: bool = True) -> Log:
    """``log(msg)`` printing ``[tag HH:MM:SS] msg`` (``[tag] msg`` without ``clock``) to stderr."""

    def log(msg: str) -> None:
        stamp = f" {time.strftime('%H:%M:%S')}" if clock else ""
        print(f"[{tag}{stamp}] {msg}", file=sys.stderr, flush=True)

    return log


def expand_inputs(patterns: list[str], prog: str) -> list[Path]:
    """Files named by paths or globs (``~`` expanded), each once, in order; exits naming ``prog``
    and the pattern when a path is missing or nothing matches."""
    files: list[Path] = []
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.expanduser(pattern))) if glob.has_magic(pattern) else [pattern]
        for name in matched:
            path = Path(name).expanduser().resolve()
            if not path.is_file():
                raise SystemExit(f"{prog}: no such file: {name}")
            if path not in files:
                files.append(path)
    if not files:
        raise SystemExit(f"{prog}: nothing matches {' '.join(patterns)}")
    return files


def jsonl_objects(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSONL file, one a line; blank lines and non-object lines are skipped."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                record = json.loads(line)
                if isinstance(record, dict):
                    yield record


@contextmanager
def scratch_folder(prefix: str, keep: bool, log: Log) -> Iterator[Path]:
    """A temporary folder for one run: removed afterwards, or kept (and logged) with ``keep``."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if keep:
            log(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
