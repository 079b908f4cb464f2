"""benchmarks/gpu.py --device cpu --small: every section runs and writes a well-formed JSON and table."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _positive_numbers(obj, where="gpu-small.json"):
    """Every number in the results is finite and positive (ratios, times, memory, tokens/s)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            _positive_numbers(value, f"{where}.{key}")
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            _positive_numbers(value, f"{where}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        assert math.isfinite(obj) and obj >= 0, f"{where} = {obj}"


@pytest.mark.slow
def test_small_cpu_run(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--small",
                          "--out-dir", str(tmp_path)], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "libraries: torch" in out.stdout
    res = json.loads((tmp_path / "gpu-small.json").read_text())
    assert res["mode"] == "small" and res["device"] == "cpu" and res["skipped"] == []
    assert res["versions"]["torch"] and res["versions"]["transformers"] and res["versions"]["peft"]
    _positive_numbers({k: v for k, v in res.items() if k not in ("settings",)})

    train = {(r["model"], r["variant"]): r for r in res["training"]}
    for model in ("llama-3.1-8b", "mixtral-8x7b"):
        for method in ("lora", "rasa", "mora", "vera"):
            for r in (8, 16, 32):
                row = train[(model, f"{method}-r{r}")]
                assert row["step_ms"] > 0 and row["trainable"] > 0
                assert row["time_vs_lora_r"] > 0
    # RaSA against LoRA at its effective rank r - k + L k (2 layers: 8 - 1 + 2 = 9)
    assert train[("llama-3.1-8b", "rasa-r8")]["r_eff"] == 9
    assert train[("llama-3.1-8b", "lora-r9")]["method"] == "lora"
    assert train[("llama-3.1-8b", "rasa-r8")]["trainable"] == train[("llama-3.1-8b", "lora-r8")]["trainable"] + 126

    forward = {f["variant"]: f for f in res["inference"]["forward"]}
    assert {"base", "lora-r8 unmerged", "lora-r8 merged", "rasa-r8 unmerged", "rasa-r8 merged"} <= set(forward)
    gen = {(g["benchmark"], g["variant"]): g for g in res["inference"]["generate"]}
    assert gen[("math", "rasa-r8")]["batch"] == 8 and gen[("humanevalplus", "rasa-r8")]["batch"] == 10
    assert all(g["new_tokens"] == res["settings"]["new_tokens"] for g in gen.values())
    assert res["recon"]["fast_per_iter_s"] > 0 and res["recon"]["fast_error"] <= res["recon"]["lora_error"]

    table = (tmp_path / "gpu-small.md").read_text()
    assert "## Training step" in table and "| mixtral-8x7b | rasa-r32 |" in table and "## HF generate" in table
    assert not (tmp_path / "gpu.json").exists()
