"""Gather what the jobs wrote under the work directory into the tidy CSVs of ``results/``.

``runs`` turns run manifests into one row per run; ``concat`` stacks CSVs that share a header
(metrics, losses), sorted so the output depends only on the inputs' content, not on job order.
Columns are documented in ``results/README.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from rasa.io import atomic_open
from rasa.runs import parse_run_id

RUN_COLUMNS = ["run_id", "model", "paper_model", "task", "method", "r", "k", "alpha", "fraction",
               "epochs", "trainable_params", "extra_params", "train_hours", "gpu_hours",
               "peak_mem_gb", "tokens_per_s", "seed", "git_commit"]
SORT_KEYS = {"metrics": ["run_id", "epoch", "benchmark", "metric", "scorer"],
             "losses": ["run_id", "step"]}


def run_row(manifest: dict) -> dict:
    s = manifest["settings"]
    row = {key: s[key] for key in ("run_id", "model", "paper_model", "method", "r", "k", "alpha",
                                   "fraction", "epochs", "seed")}
    row["task"] = parse_run_id(s["run_id"]).task
    for key in ("trainable_params", "extra_params", "train_hours", "gpu_hours", "peak_mem_gb",
                "tokens_per_s", "git_commit"):
        row[key] = manifest[key]
    return row


def write_csv(frame: pd.DataFrame, out: str | Path) -> None:
    with atomic_open(out) as fh:
        frame.to_csv(fh, index=False, float_format="%.10g")


def collect_runs(manifests: list[str], out: str) -> None:
    rows = [run_row(json.loads(Path(p).read_text())) for p in manifests]
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS).sort_values("run_id")
    write_csv(frame, out)


def concat(inputs: list[str], kind: str, out: str) -> None:
    frames = [pd.read_csv(p) for p in inputs]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if not frame.empty:
        frame = frame.sort_values(SORT_KEYS[kind], kind="stable")
    write_csv(frame, out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["runs", "metrics", "losses"])
    parser.add_argument("--inputs", nargs="*", default=[])
    parser.add_argument("--out", required=True)
    a = parser.parse_args(argv)
    if a.kind == "runs":
        collect_runs(a.inputs, a.out)
    else:
        concat(a.inputs, a.kind, a.out)


if __name__ == "__main__":
    main()
