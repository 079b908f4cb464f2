"""Fixtures for tests that drive Snakemake in a copy of the repository; every test here is ``slow``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from snake import ROOT

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items):
    """Mark every test of this folder ``slow``: each one runs Snakemake (seconds to an hour)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The tracked files of the repository (plus uncommitted edits) in a fresh folder."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    dest = tmp_path / "repo"
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest
