"""Models placed while loading (``--device-map``, for models larger than one GPU) generate and
score as a model moved to one device does."""

from __future__ import annotations

import argparse


def _args(model_dir, trained, **extra):
    from rasa.evaluation import generation

    parser = argparse.ArgumentParser()
    generation.add_model_args(parser)
    argv = ["--model", str(model_dir), "--device", "cpu"]
    argv += ["--trained", str(trained)] if trained else []
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", value]
    return parser.parse_args(argv)


def test_device_map_generation_equals_one_device(tiny_model_dir, lora_adapter_dir):
    from rasa.evaluation.generation import DecodingConfig, engine_from_args

    prompts = ["def add(x, y):\n", "a"]
    cfg = DecodingConfig(max_new_tokens=8, batch_size=2)
    placed = engine_from_args(_args(tiny_model_dir, lora_adapter_dir, device_map="auto"))
    moved = engine_from_args(_args(tiny_model_dir, lora_adapter_dir))
    assert str(placed.device) == "cpu"  # accelerate's placement on a machine without GPUs
    assert placed.generate(prompts, cfg, desc=None) == moved.generate(prompts, cfg, desc=None)


def test_dtype_reaches_the_loaded_model(tiny_model_dir):
    import torch

    from rasa.evaluation.generation import engine_from_args

    engine = engine_from_args(_args(tiny_model_dir, None, dtype="bfloat16", device_map="auto"))
    assert next(engine.model.parameters()).dtype == torch.bfloat16
