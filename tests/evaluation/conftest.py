"""Fixtures for the evaluation tests: tiny problem files and a LoRA adapter on the tiny Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lora_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A standard PEFT LoRA adapter (random B, so it changes the outputs) on the tiny Llama."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("lora")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.5)
    peft_model.save_pretrained(out)
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def write_jsonl():
    """``write_jsonl(path, rows) -> path``."""
    return _write_jsonl


@pytest.fixture
def toy_problems() -> list[dict]:
    """Two HumanEval+-format problems (evalplus schema)."""
    return [
        {"task_id": "Toy/0", "entry_point": "add",
         "prompt": 'def add(x: int, y: int) -> int:\n    """Return x + y.\n    >>> add(1, 2)\n    3\n    """\n',
         "canonical_solution": "    return x + y\n", "contract": "",
         "base_input": [[1, 2], [0, 0], [-3, 5]], "plus_input": [[10**9, 1], [7, -7]], "atol": 0},
        {"task_id": "Toy/1", "entry_point": "halve",
         "prompt": 'def halve(x: float) -> float:\n    """Return half of x.\n    >>> halve(3.0)\n    1.5\n    """\n',
         "canonical_solution": "    return x / 2\n", "contract": "",
         "base_input": [[3.0], [1.0]], "plus_input": [[1e-9], [-7.5]], "atol": 1e-6},
    ]
