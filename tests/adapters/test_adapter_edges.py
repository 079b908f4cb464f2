"""Edges of PEFT's API for RaSA and MoRA: mixed-adapter batches, weighted adapters, loading into a
model with another layer count, and RaSA with k = 0 on modules without a layer index."""

import pytest
import torch
from peft import PeftModel, get_peft_model

from rasa.adapters import MoraConfig, RasaConfig

from adapter_models import LLAMA_TARGETS, tiny_llama
from test_rasa import _Stack

CONFIGS = {
    "rasa": lambda: RasaConfig(r=4, k=1, target_modules=list(LLAMA_TARGETS), init_weights=False),
    "mora": lambda: MoraConfig(r=4, target_modules=list(LLAMA_TARGETS), init_weights=False),
}


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_mixed_adapter_batch_is_refused(method, llama, tokens):
    model = get_peft_model(llama, CONFIGS[method](), adapter_name="first")
    model.add_adapter("second", CONFIGS[method]())
    with pytest.raises(ValueError, match="does not support mixed-adapter batches"):
        model(tokens, adapter_names=["first", "second"])
    with pytest.raises(ValueError, match="does not support mixed-adapter batches"):
        model.generate(input_ids=tokens, adapter_names=["first", "second"], max_new_tokens=1)
    model(tokens)  # without adapter_names nothing changes


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_weighted_adapter_is_refused(method, llama):
    model = get_peft_model(llama, CONFIGS[method](), adapter_name="first")
    model.add_adapter("second", CONFIGS[method]())
    with pytest.raises(NotImplementedError, match="add_weighted_adapter is not supported"):
        model.add_weighted_adapter(["first", "second"], [0.5, 0.5], "both", combination_type="cat")


def test_loading_into_another_layer_count_explains_the_pool(tmp_path):
    get_peft_model(tiny_llama(num_layers=3), CONFIGS["rasa"]()).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"L=3 adapted layers, but this model has L=2 such layers"):
        PeftModel.from_pretrained(tiny_llama(num_layers=2), tmp_path)
    PeftModel.from_pretrained(tiny_llama(num_layers=3, seed=1), tmp_path)  # the same count loads


def _stack():
    torch.manual_seed(0)
    return _Stack([8, 8, 8])


def test_k0_works_on_modules_without_a_layer_index(tmp_path):
    model = get_peft_model(_stack(), RasaConfig(r=2, k=0, target_modules=["proj", "head"], init_weights=False))
    summary = model.base_model.rasa_summary()
    assert summary["head"] == {"num_layers": 1, "shape": (2, 8), "effective_rank": 2, "modules": ["head"]}
    x = torch.randn(3, 8)
    y = model(x)
    y.sum().backward()
    assert model.base_model.model.head.rasa_A["default"].grad is not None
    model.save_pretrained(tmp_path)
    assert torch.allclose(PeftModel.from_pretrained(_stack(), tmp_path)(x), y)
    with pytest.raises(ValueError, match="no layer index"):  # k > 0 still needs an index for the pool
        get_peft_model(_stack(), RasaConfig(r=2, k=1, target_modules=["proj", "head"]))
