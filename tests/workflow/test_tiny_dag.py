"""The whole tiny study end to end, twice: outputs exist, a rerun has nothing to do, and a run
from scratch reproduces every tidy CSV byte for byte (except the measured wall-clock costs)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from snake import job_counts, snakemake

MEASURED = ["train_hours", "gpu_hours", "peak_mem_gb", "tokens_per_s"]  # wall-clock, not seeded
TIDY = ["metrics.csv", "losses.csv", "recon.csv", "mechanism.csv"]


@pytest.mark.slow
def test_tiny_study_runs_end_to_end_and_reproduces(repo_copy):
    snakemake("--cores", "2", "all", cwd=repo_copy, timeout=3600)
    results = repo_copy / "results"
    for name in ("tables/table1.md", "tables/table2.md", "tables/table1_delta.tex",
                 "tables/table2_paper.csv", *TIDY, "runs.csv"):
        assert (results / name).is_file(), name
    for figure in ("figure2", "figure3", "figure4", "figure5", "figure6", "figure7", "mechanism"):
        assert (results / "figures" / f"{figure}.png").stat().st_size > 10_000, figure
        assert (results / "figures" / f"{figure}.pdf").is_file(), figure

    runs = pd.read_csv(results / "runs.csv")
    assert len(runs) == 14 and runs["trainable_params"].gt(0).all()
    metrics = pd.read_csv(results / "metrics.csv")
    for run in runs.run_id:
        benchmark = "humanevalplus" if "__code__" in run else "math"
        assert (metrics.run_id == run).any() and benchmark in set(metrics[metrics.run_id == run].benchmark)
    losses = pd.read_csv(results / "losses.csv")
    for run, curve in losses.groupby("run_id"):
        first, last = curve.sort_values("step").loss.iloc[[0, -1]]
        assert last < first, f"{run}: loss did not go down ({first} -> {last})"

    snakemake("--report", "report.html", cwd=repo_copy)  # the Snakemake report, captions included
    page = (repo_copy / "report.html").read_text()
    assert "figure2.png" in page and "table1.md" in page and "Mechanism check" in page

    rerun = snakemake("-n", "--cores", "2", "all", cwd=repo_copy)
    assert not job_counts(rerun.stdout), "a second run should have nothing to do"

    first = {name: (results / name).read_bytes() for name in TIDY}
    first_runs = pd.read_csv(results / "runs.csv").drop(columns=MEASURED)
    shutil.rmtree(results)
    shutil.rmtree(repo_copy / "work")
    snakemake("--cores", "2", "all", cwd=repo_copy, timeout=3600)
    for name in TIDY:
        assert (results / name).read_bytes() == first[name], f"{name} differs between two runs"
    pd.testing.assert_frame_equal(pd.read_csv(results / "runs.csv").drop(columns=MEASURED), first_runs)
