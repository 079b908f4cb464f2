"""Fixtures for tests that drive Snakemake in a copy of the repository."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from snake import ROOT


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
