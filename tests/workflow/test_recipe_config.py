"""Recipe settings as the DAG resolves them: per-method micro batches, and the few-shot refusal."""

from __future__ import annotations

import json
import re

import yaml

from rasa import study
from rasa.runs import parse_run_id, run_id

from snake import ROOT, snakemake


def test_micro_batch_follows_the_authors_scripts_per_method():
    paper = yaml.safe_load((ROOT / "configs/paper.yaml").read_text())
    expected = {("llama-3.1-8b", "math", "vera"): 4, ("llama-3.1-8b", "math", "lora"): 3,
                ("llama-3.1-8b", "code", "vera"): 2, ("mistral-7b-v0.3", "math", "mora"): 6,
                ("mistral-7b-v0.3", "math", "rasa"): 8}
    runs = {}
    for spec in study.all_runs(paper):
        key = (spec.model, spec.task, spec.method)
        if key in expected and spec.fraction == 1.0:
            runs.setdefault(key, run_id(spec))
    targets = [f"work/runs/{run}/manifest.json" for run in runs.values()]
    out = snakemake("-n", "-p", *targets, "--configfile", "configs/paper.yaml").stdout
    settings = [json.loads(m.replace("'\\''", "'")) for m in re.findall(r"--settings '(\{.*?\})'", out)]
    got = {(s["model"], parse_run_id(s["run_id"]).task, s["method"]): s["micro_batch"] for s in settings}
    assert got == expected
    assert {s["loss_averaging"] for s in settings} == {"micro_batch"}
    assert {s["mask"] for s in settings} == {"instruction"}


def test_fewshot_on_local_forgetting_tasks_is_rejected_before_any_job(tmp_path):
    config = yaml.safe_load((ROOT / "configs/config.yaml").read_text())
    config["benchmarks"]["forgetting"]["num_fewshot"] = 5
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = snakemake("-n", "all", "--configfile", str(path), check=False)
    assert proc.returncode != 0
    assert "num_fewshot" in proc.stdout + proc.stderr
