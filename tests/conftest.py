"""Shared fixtures: a tiny Llama built the way the pipeline builds it (no pre-training)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "rasa" / "fixtures"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from rasa import tiny

    out = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = tiny.train_tokenizer(tiny.corpus_texts([str(p) for p in FIXTURES.glob("*.jsonl")]), 384)
    model = tiny.build_model("llama", {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 2, "num_key_value_heads": 1,
                                       "max_position_embeddings": 256}, tokenizer, seed=0)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
