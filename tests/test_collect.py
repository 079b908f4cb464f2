"""rasa.collect: manifests to runs.csv (the task read from the run id), CSVs stacked in content order."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rasa import collect

MEASURED = {"trainable_params": 10, "extra_params": 0, "train_hours": 0.5, "gpu_hours": 4.0,
            "peak_mem_gb": 1.5, "tokens_per_s": 100.0, "git_commit": "abc"}


def _manifest(tmp_path, run_id: str, method: str):
    settings = {"run_id": run_id, "model": "tiny-llama", "paper_model": "Llama-3.1-8B", "method": method,
                "r": 8, "k": 1, "alpha": 16, "fraction": 1.0, "epochs": 2, "seed": 0}
    path = tmp_path / f"{run_id}.json"
    path.write_text(json.dumps({"settings": settings, **MEASURED}))
    return str(path)


def test_runs_are_one_row_each_sorted_with_the_task_of_their_id(tmp_path):
    paths = [_manifest(tmp_path, "tiny-llama__math__rasa-r8-k1__f100__e2", "rasa"),
             _manifest(tmp_path, "tiny-llama__code__lora-r8__f100__e2", "lora")]
    collect.main(["runs", "--inputs", *paths, "--out", str(tmp_path / "out" / "runs.csv")])
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert list(runs.columns) == collect.RUN_COLUMNS
    assert list(runs["task"]) == ["code", "math"] and list(runs["method"]) == ["lora", "rasa"]


def test_a_malformed_run_id_is_refused_naming_it(tmp_path):
    path = _manifest(tmp_path, "tiny-llama__math", "rasa")
    with pytest.raises(ValueError, match="not a run id: 'tiny-llama__math'"):
        collect.main(["runs", "--inputs", path, "--out", str(tmp_path / "runs.csv")])


def test_losses_are_stacked_in_content_order_whatever_the_input_order(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("run_id,step,epoch,loss\nr2,1,0.5,2.0\n")
    b.write_text("run_id,step,epoch,loss\nr1,2,1,1.0\nr1,1,0.5,3.0\n")
    outs = []
    for order in ([a, b], [b, a]):
        out = tmp_path / f"losses{len(outs)}.csv"
        collect.main(["losses", "--inputs", *map(str, order), "--out", str(out)])
        outs.append(out.read_text())
    assert outs[0] == outs[1] == "run_id,step,epoch,loss\nr1,1,0.5,3\nr1,2,1,1\nr2,1,0.5,2\n"
