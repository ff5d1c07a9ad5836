"""The private PostgreSQL harness fails (never skips) with the fix when the server is not installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.postgres import find_bindir, require_bindir

pytestmark = pytest.mark.unit


def test_missing_binaries_fail_the_test_naming_scripts_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no initdb on PATH either
    with pytest.raises(pytest.fail.Exception, match=r"initdb, pg_ctl\) not found: run scripts/setup"):
        require_bindir(tmp_path / "no-postgresql")


def test_the_newest_debian_server_is_chosen(tmp_path: Path) -> None:
    for version in ("9", "15", "notes"):
        (tmp_path / version / "bin").mkdir(parents=True)
        (tmp_path / version / "bin" / "initdb").touch()
    assert find_bindir(tmp_path) == tmp_path / "15" / "bin"
