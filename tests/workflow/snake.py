"""Running Snakemake from tests, and reading its dry-run job table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def snakemake(*args: str, cwd: Path = ROOT, check: bool = True, timeout: int = 1800):
    """Run ``snakemake`` with this interpreter's environment on PATH; return the completed process."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def job_counts(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    counts, in_table = {}, False
    for line in dry_run_output.splitlines():
        if line.startswith("Job stats"):
            in_table = True
            continue
        parts = line.split()
        if in_table and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
        elif in_table and counts and not parts:
            break
    return counts


