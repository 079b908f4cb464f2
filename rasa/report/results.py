"""Reading the tidy result CSVs (the contract documented in ``results/README.md``).

Strict mode (the default) collects *every* missing input a target needs and then raises one
:class:`MissingResultsError` that names each file, run and epoch. Partial mode (``--partial``)
records the same list but carries on: missing cells and points are drawn as missing.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

#: Columns of each results CSV, in order. Other stages write exactly these.
CONTRACT = {
    "runs.csv": ["run_id", "model", "paper_model", "task", "method", "r", "k", "alpha", "fraction",
                 "epochs", "trainable_params", "extra_params", "train_hours", "gpu_hours",
                 "peak_mem_gb", "tokens_per_s", "seed", "git_commit"],
    "metrics.csv": ["run_id", "epoch", "benchmark", "metric", "scorer", "value"],
    "losses.csv": ["run_id", "step", "epoch", "loss"],
    "recon.csv": ["model", "module", "analysis", "r", "k", "method", "init", "iteration", "error"],
    "mechanism.csv": ["method", "r", "k", "step", "loss", "trainable_params"],
}


class MissingResultsError(RuntimeError):
    """A target needs results that are not there (without ``--partial``)."""


class Missing:
    """Collects what a target needed and did not find; raises at :meth:`check` unless partial."""

    def __init__(self, target: str, partial: bool):
        self.target = target
        self.partial = partial
        self.items: list[str] = []

    def add(self, what: str) -> None:
        if what not in self.items:
            self.items.append(what)

    def __len__(self) -> int:
        return len(self.items)

    def check(self) -> None:
        if self.items and not self.partial:
            shown = "\n  ".join(self.items[:40])
            more = f"\n  ... and {len(self.items) - 40} more" if len(self.items) > 40 else ""
            raise MissingResultsError(
                f"{self.target}: {len(self.items)} missing input(s):\n  {shown}{more}\n"
                "(render from whatever exists with --partial)")


#: Written by the analysis rules straight into results/ (not gathered per target).
ANALYSIS_FILES = ("recon.csv", "mechanism.csv")


class Results:
    """Lazy access to the CSVs of one results directory (``analysis_root``, if given, holds
    recon.csv and mechanism.csv)."""

    def __init__(self, root: str | Path, analysis_root: str | Path | None = None):
        self.root = Path(root)
        self.analysis_root = Path(analysis_root) if analysis_root else self.root
        self._cache: dict[str, pd.DataFrame | None] = {}

    def path(self, name: str) -> Path:
        return (self.analysis_root if name in ANALYSIS_FILES else self.root) / name

    def table(self, name: str, missing: Missing) -> pd.DataFrame:
        """The CSV as a DataFrame; an empty one with the contract's columns if the file is absent
        (and the absence recorded in ``missing``)."""
        if name not in self._cache:
            p = self.path(name)
            if p.exists():
                try:
                    df = pd.read_csv(p)
                except pd.errors.EmptyDataError:  # a gathering step with nothing to gather
                    df = pd.DataFrame({c: pd.Series(dtype=object) for c in CONTRACT[name]})
                lacking = [c for c in CONTRACT[name] if c not in df.columns]
                if lacking:
                    raise ValueError(f"{p}: missing column(s) {lacking}; expected {CONTRACT[name]}")
                self._cache[name] = df
            else:
                self._cache[name] = None
        df = self._cache[name]
        if df is None:
            missing.add(f"{self.path(name)}: file not found")
            return pd.DataFrame({c: pd.Series(dtype=object) for c in CONTRACT[name]})
        return df

    # ---- runs.csv ------------------------------------------------------------------------
    def run_row(self, rid: str, missing: Missing) -> pd.Series | None:
        runs = self.table("runs.csv", missing)
        rows = runs[runs["run_id"] == rid]
        if rows.empty:
            if self.path("runs.csv").exists():
                missing.add(f"{self.path('runs.csv')}: no row for run {rid}")
            return None
        if len(rows) > 1:
            raise ValueError(f"{self.path('runs.csv')}: {len(rows)} rows for run {rid}")
        return rows.iloc[0]

    # ---- metrics.csv ---------------------------------------------------------------------
    def series(self, rid: str, benchmark: str, metric: str, scorer: str,
               missing: Missing | None = None, epochs: range | None = None) -> pd.Series:
        """``epoch -> value`` of one run, benchmark, metric and scorer (sorted by epoch).

        With ``epochs``, each absent epoch is recorded in ``missing``."""
        m = self.table("metrics.csv", missing if missing is not None else Missing("", True))
        sel = m[(m["run_id"] == rid) & (m["benchmark"] == benchmark) & (m["metric"] == metric)
                & (m["scorer"] == scorer)]
        if sel["epoch"].duplicated().any():
            raise ValueError(f"{self.path('metrics.csv')}: duplicate epochs for {rid} {benchmark} "
                             f"{metric} ({scorer})")
        s = pd.Series(sel["value"].astype(float).to_numpy(), index=sel["epoch"].astype(int).to_numpy())
        s = s.sort_index()
        if epochs is not None and missing is not None and self.path("metrics.csv").exists():
            absent = [e for e in epochs if e not in s.index or _nan(s.get(e))]
            if absent:
                missing.add(f"{self.path('metrics.csv')}: no {benchmark} {metric} (scorer {scorer}) "
                            f"for run {rid} at epoch(s) {_ranges(absent)}")
        return s

    def best_last(self, rid: str, epochs: int, benchmark: str, metric: str, scorer: str,
                  missing: Missing, first: int = 1) -> tuple[float, float]:
        """(BEST, LAST) of one metric: BEST = max over epochs first..E (only when all are
        present: a partial maximum would not be the run's BEST), LAST = the value at epoch E.
        A base model (``first = E = 0``) has BEST = LAST = its epoch-0 value."""
        s = self.series(rid, benchmark, metric, scorer, missing, range(first, epochs + 1))
        s = s[(s.index >= first) & (s.index <= epochs)].dropna()
        best = float(s.max()) if len(s) == epochs - first + 1 else math.nan
        last = float(s[epochs]) if epochs in s.index else math.nan
        return best, last

    # ---- losses.csv ----------------------------------------------------------------------
    def epoch_losses(self, rid: str, epochs: int, missing: Missing) -> pd.Series:
        """Mean training loss of the optimizer steps in each epoch 1..E.

        A step with fractional epoch ``x`` belongs to epoch ``ceil(x)`` (so epoch 1 holds
        ``0 < x <= 1``). Epochs without any step are recorded as missing."""
        df = self.table("losses.csv", missing)
        d = df[df["run_id"] == rid]
        if d.empty:
            if self.path("losses.csv").exists():
                missing.add(f"{self.path('losses.csv')}: no steps for run {rid}")
            return pd.Series(dtype=float)
        ep = d["epoch"].astype(float).map(lambda x: max(1, math.ceil(round(x, 9))))
        s = d["loss"].astype(float).groupby(ep.to_numpy()).mean()
        s = s[(s.index >= 1) & (s.index <= epochs)]
        absent = [e for e in range(1, epochs + 1) if e not in s.index]
        if absent:
            missing.add(f"{self.path('losses.csv')}: no steps for run {rid} in epoch(s) "
                        f"{_ranges(absent)}")
        return s


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _ranges(nums: list[int]) -> str:
    return ", ".join(str(n) for n in nums)
