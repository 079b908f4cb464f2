"""rasa.cost: GPU-hours of a hand-made study, checked against arithmetic done by hand."""

from __future__ import annotations

import json

import pytest
import yaml

from rasa import cost
from rasa.paper_time import train_hours

# speed figures chosen to make the hand arithmetic exact
SPEED = {"hf_step_s_base": (0.25, "test"), "hf_step_s_adapter": (0.5, "test"),
         "prefill_tokens_per_s": (1000.0, "test"), "recon_init_s": (1.0, "test"),
         "recon_iter_s": (1.0, "test"), "vllm_tokens_per_s": (10.0, "test")}


def hand_config(tmp_path) -> dict:
    problems = tmp_path / "humanevalplus.jsonl"
    problems.write_text('{"task_id": 1}\n{"task_id": 2}\n{"task_id": 3}\n')
    return {
        "models": {"m8b": {"paper_name": "Llama-3.1-8B", "source": "hub", "params_b": 8.0, "dtype": "bfloat16",
                           "gpus_per_node": 8, "nodes": 1, "train_hours": 10, "target_modules": ["q_proj"]}},
        "datasets": {"code": {}},
        "tasks": {"code": {"dataset": "code", "benchmark": "humanevalplus"}},
        "methods": {"lora": {}, "rasa": {}, "fft": {}},
        "training": {"global_batch": 8, "micro_batch": 2, "dtype": "bfloat16"},
        "resources": {"gpu_mem_gb": 80, "node_mem_gb": 480},  # 16 GB of bf16 weights: one GPU per evaluation
        "benchmarks": {"humanevalplus": {"path": str(problems), "n_samples": 5, "batch_size": 4,
                                         "max_new_tokens": 100},
                       "math": {"path": "hub"}, "forgetting": {}},
        "study": {"table1": {"task": "code", "models": ["m8b"], "methods": ["lora", "rasa", "fft"],
                             "ranks": [4, 8], "epochs": 4}},
    }


def test_paper_time_lookup():
    assert train_hours("Llama-3.1-8B", "code", "lora", 8) == 9.6
    assert train_hours("Mistral-0.3-7B", "math", "RaSA", 32) == 16.5
    assert train_hours("Llama-3.1-8B", "code", "vera", 1024) == 11.3
    assert train_hours("Llama-3.1-8B", "math", "fft", 0) is None
    assert train_hours("Llama-3.1-70B", "math", "lora", 4) is None


def test_estimate_arithmetic(tmp_path):
    rows = cost.estimate(hand_config(tmp_path), SPEED)
    train = {r["source"]: r for r in rows if r["rule"] == "train"}
    # paper Time (1 x 8 A100, 8 epochs) x 8 GPUs x 4/8 epochs: LoRA r=8 9.6 h, RaSA r=8 11.2 h
    assert train["paper Time"]["jobs"] == 2
    assert train["paper Time"]["gpu_hours"] == pytest.approx((9.6 + 11.2) * 8 * 4 / 8)
    # r=4 is not in the paper: its nearest rank r=8, same scaling
    assert train["paper Time at r=8 (nearest rank)"]["gpu_hours"] == pytest.approx((9.6 + 11.2) * 4)
    # full fine-tuning: the config's 10-hour limit on 8 GPUs, an upper bound
    limit = next(r for s, r in train.items() if s.startswith("config train_hours"))
    assert (limit["jobs"], limit["gpu_hours"]) == (1, 80)

    # 5 runs x 4 epochs; 3 problems x 5 samples = 15 sequences, batches of 4 -> 4 batches x 100 steps
    hf = {r["source"]: r for r in rows if r["rule"] == "humanevalplus" and r["backend"] == "hf"}
    assert hf["hf_step_s_adapter=0.5"]["jobs"] == 16
    assert hf["hf_step_s_adapter=0.5"]["gpu_hours"] == pytest.approx(16 * 400 * 0.5 / 3600)
    assert hf["hf_step_s_base=0.25"]["gpu_hours"] == pytest.approx(4 * 400 * 0.25 / 3600)
    vllm = next(r for r in rows if r["rule"] == "humanevalplus" and r["backend"] == "vllm")
    assert vllm["generated_tokens"] == 20 * 1500
    assert vllm["gpu_hours"] == pytest.approx(20 * 1500 / 10 / 3600)

    totals = {r["backend"]: r["gpu_hours"] for r in rows if r["rule"] == "total"}
    training = (9.6 + 11.2) * 8 + 80
    assert totals["hf"] == pytest.approx(training + (16 * 200 + 4 * 100) / 3600)
    assert totals["vllm"] == pytest.approx(training + 20 * 150 / 3600)


def test_fill_scales_generation_only(tmp_path):
    full = cost.estimate(hand_config(tmp_path), SPEED)
    half = cost.estimate(hand_config(tmp_path), SPEED, fill=0.5)
    pick = lambda rows, rule: sum(r["gpu_hours"] for r in rows if r["rule"] == rule)  # noqa: E731
    assert pick(half, "humanevalplus") == pytest.approx(pick(full, "humanevalplus") / 2)
    assert pick(half, "train") == pick(full, "train")


def test_measured_figures_replace_defaults(tmp_path):
    gen = [{"variant": "base", "layers": 16, "ms_per_step": 10.0},
           {"variant": "rasa-r8", "layers": 16, "ms_per_step": 20.0}]
    res = {"mode": "full", "device": "cuda", "device_name": "Test GPU", "settings": {"layers": 16},
           "inference": {"generate": gen, "forward": [{"variant": "rasa-r8 unmerged", "tokens_per_s": 4000.0}]}}
    path = tmp_path / "gpu.json"
    path.write_text(json.dumps(res))
    speed = cost.throughput(path)
    assert speed["hf_step_s_base"][0] == pytest.approx(0.020)  # 16 layers measured, scaled to 32
    assert speed["hf_step_s_adapter"][0] == pytest.approx(0.040)
    assert speed["prefill_tokens_per_s"][0] == pytest.approx(2000.0)
    assert "Test GPU" in speed["hf_step_s_base"][1]
    assert speed["vllm_tokens_per_s"] == cost.DEFAULTS["vllm_tokens_per_s"]  # never measured here
    path.write_text(json.dumps(dict(res, mode="small", device="cpu")))
    assert cost.throughput(path) == cost.DEFAULTS


def test_cli_writes_csv(tmp_path, capsys):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(hand_config(tmp_path)))
    out = tmp_path / "cost.csv"
    assert cost.main(["--configfile", str(cfg), "--gpu-json", str(tmp_path / "absent.json"),
                      "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "NOT measured here" in text and "paper Time" in text
    import pandas as pd

    df = pd.read_csv(out)
    assert set(df["rule"]) == {"train", "humanevalplus", "total"}
    assert df[df["rule"] == "total"]["gpu_hours"].gt(0).all()
    with pytest.raises(SystemExit, match="--fill"):
        cost.main(["--configfile", str(cfg), "--fill", "0"])


def test_unknown_model_names_the_field_and_fft_without_time_takes_the_partition_limit(tmp_path):
    config = hand_config(tmp_path)
    config["models"]["m8b"]["paper_name"] = "Other-1B"
    with pytest.raises(ValueError, match=r"models\.m8b\.paper_name"):
        cost.estimate(config, SPEED)
    config["models"]["m8b"]["paper_name"] = "Llama-3.1-8B"
    del config["models"]["m8b"]["train_hours"]
    config["resources"]["max_hours"] = 48
    rows = cost.estimate(config, SPEED)  # full fine-tuning has no paper time: the job's Slurm limit
    fft = next(r for r in rows if r["source"].startswith("resources.max_hours"))
    assert (fft["jobs"], fft["gpu_hours"]) == (1, 48 * 8)
