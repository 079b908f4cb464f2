"""The rehearsal's path on the real model, cheaply: conversion, one RaSA optimizer step through
rasa.train, then generation and scoring of two HumanEval problems through the pipeline's CLIs."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from rasa.evaluation import human_eval_problems
from rasa.gguf import package_dir

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "rasa" / "fixtures"


def _run(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.slow
def test_convert_train_one_step_generate_and_score_two_problems(smollm2_dir, tmp_path):
    source = json.loads((smollm2_dir / "source.json").read_text())
    gguf_file = package_dir(source["package"]) / source["file"]
    assert source["sha256"] == hashlib.sha256(gguf_file.read_bytes()).hexdigest()

    data_file = tmp_path / "code.jsonl"
    data_file.write_text("".join(open(FIXTURES / "magicoder_evol.jsonl").readlines()[:2]))
    settings = {
        "run_id": "smollm2__code__rasa-r8-k1__f100__e1", "model": "smollm2", "paper_model": "Llama-3.1-8B",
        "model_path": str(smollm2_dir), "revision": None, "method": "rasa", "r": 8, "k": 1, "alpha": 32,
        "lr": 5e-4, "epochs": 1, "fraction": 1.0, "seed": 42,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "question": "instruction", "answer": "response", "micro_batch": 2, "global_batch": 2,
        "max_length": 128, "dropout": 0.05, "warmup_ratio": 0.1, "lion_betas": [0.9, 0.95],
        "weight_decay": 0.0, "mask": "instruction", "loss_averaging": "micro_batch",
        "group_by_length": True, "gradient_checkpointing": False, "dtype": "float32", "deepspeed": None,
        "nodes": 1, "procs_per_node": 1, "checkpoint_minutes": 30, "deadline_margin_minutes": 15,
    }
    out = tmp_path / "run"
    _run("rasa.train", "--settings", json.dumps(settings), "--data", str(data_file),
         "--checkpoints", str(tmp_path / "ckpt"), "--out", str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["optimizer_steps"] == 1
    assert manifest["model_source"]["sha256"] == source["sha256"]
    with open(out / "losses.csv", newline="") as fh:
        losses = [float(row["loss"]) for row in csv.DictReader(fh)]
    assert losses and all(math.isfinite(x) and x > 0 for x in losses)

    problems, samples = tmp_path / "problems.jsonl", tmp_path / "samples.jsonl"
    human_eval_problems.main(["--out", str(problems), "--limit", "2"])
    _run("rasa.evaluation.humaneval", "generate", "--model", str(smollm2_dir),
         "--trained", str(out / "weights" / "epoch-1"), "--problems", str(problems),
         "--n-samples", "1", "--temperature", "0", "--max-new-tokens", "96", "--batch-size", "2",
         "--backend", "hf", "--device", "cpu", "--samples", str(samples))
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
    metrics = tmp_path / "metrics.csv"
    _run("rasa.evaluation.humaneval", "score", "--samples", str(samples), "--problems", str(problems),
         "--run-id", settings["run_id"], "--epoch", "1", "--timeout", "10", "--workers", "2",
         "--scorers", "plus,base", "--out", str(metrics), "--details", str(tmp_path / "details.csv"))
    with open(metrics, newline="") as fh:
        scored = list(csv.DictReader(fh))
    assert {r["scorer"] for r in scored} == {"plus", "base"}
    assert all(0 <= float(r["value"]) <= 100 for r in scored)


@pytest.mark.slow
def test_base_model_generates_through_its_chat_template_without_trained_weights(smollm2_dir, tmp_path):
    """The tables' base row (`base_prompt: chat`): no --trained, the reply's code block is the program."""
    problems, samples = tmp_path / "problems.jsonl", tmp_path / "samples.jsonl"
    human_eval_problems.main(["--out", str(problems), "--limit", "2"])
    _run("rasa.evaluation.humaneval", "generate", "--model", str(smollm2_dir), "--prompt", "chat",
         "--problems", str(problems), "--n-samples", "1", "--temperature", "0",
         "--max-new-tokens", "128", "--batch-size", "2", "--backend", "hf", "--device", "cpu",
         "--samples", str(samples))
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [r["task_id"] for r in rows] == ["HumanEval/0", "HumanEval/1"]
    assert {r["prompt"] for r in rows} == {"chat"}
    for row, problem in zip(rows, human_eval_problems.load(limit=2)):
        assert "```" in row["completion"]  # the chat model answers with a code block
        assert f"def {problem['entry_point']}(" in row["solution"]
    metrics = tmp_path / "metrics.csv"
    _run("rasa.evaluation.humaneval", "score", "--samples", str(samples), "--problems", str(problems),
         "--run-id", "smollm2__base", "--epoch", "0", "--timeout", "10", "--workers", "2",
         "--scorers", "plus,base", "--out", str(metrics), "--details", str(tmp_path / "details.csv"))
    with open(metrics, newline="") as fh:
        assert {r["scorer"] for r in csv.DictReader(fh)} == {"plus", "base"}
