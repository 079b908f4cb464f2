"""PEFT-tuner-suite-style behaviour tests, run for both RaSA and MoRA on a tiny random Llama (fp32 unless stated)."""

import copy
import os

import pytest
import torch
from peft import PeftModel, get_peft_model

from rasa.adapters import MoraConfig, RasaConfig
from rasa.adapters.mora import MoraLayer
from rasa.adapters.rasa import RasaLayer

from adapter_models import LLAMA_TARGETS, tiny_llama

METHODS = ["rasa", "mora"]
LAYER = {"rasa": RasaLayer, "mora": MoraLayer}


def make_config(method, init_weights=False, targets=LLAMA_TARGETS, r=4, **kw):
    if method == "rasa":
        return RasaConfig(r=r, k=kw.pop("k", 1), alpha=kw.pop("alpha", 8.0), target_modules=list(targets),
                          init_weights=init_weights, **kw)
    return MoraConfig(r=r, target_modules=list(targets), init_weights=init_weights, **kw)


def logits(model, tokens):
    with torch.no_grad():
        return model(tokens).logits


def n_layers(model, method):
    return sum(isinstance(m, LAYER[method]) for m in model.modules())


@pytest.mark.parametrize("method", METHODS)
def test_fresh_adapter_is_noop(method, llama, tokens):
    base_out = logits(llama, tokens)
    m = get_peft_model(llama, make_config(method, init_weights=True))
    assert n_layers(m, method) == 3 * len(LLAMA_TARGETS)
    torch.testing.assert_close(logits(m, tokens), base_out)


@pytest.mark.parametrize("method", METHODS)
def test_merge_unmerge_disable(method, llama, tokens):
    base_out = logits(llama, tokens)
    base_weights = {n: p.detach().clone() for n, p in llama.named_parameters()}
    m = get_peft_model(llama, make_config(method))
    out = logits(m, tokens)
    assert not torch.allclose(out, base_out, atol=1e-3)
    with m.disable_adapter():
        torch.testing.assert_close(logits(m, tokens), base_out, rtol=0, atol=0)
    m.merge_adapter(safe_merge=True)
    torch.testing.assert_close(logits(m, tokens), out, rtol=1e-5, atol=1e-5)
    m.unmerge_adapter()
    for n, p in m.base_model.model.named_parameters():
        key = n.replace(".base_layer", "")
        if key in base_weights:
            torch.testing.assert_close(p, base_weights[key], rtol=0, atol=1e-6)
    merged = m.merge_and_unload()
    assert not any(isinstance(x, LAYER[method]) for x in merged.modules())
    torch.testing.assert_close(logits(merged, tokens), out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_save_load_roundtrip(method, llama_base, tokens, tmp_path):
    m = get_peft_model(copy.deepcopy(llama_base), make_config(method, dropout=0.1)).eval()
    out = logits(m, tokens)
    m.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(llama_base), tmp_path)
    assert type(loaded.peft_config["default"]) is type(m.peft_config["default"])
    torch.testing.assert_close(logits(loaded, tokens), out, rtol=0, atol=0)
    assert not any(p.requires_grad for p in loaded.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_two_adapters_switch(method, llama_base, tokens, tmp_path):
    base_out = logits(llama_base, tokens)
    m = get_peft_model(copy.deepcopy(llama_base), make_config(method))
    out_a = logits(m, tokens)
    torch.manual_seed(7)
    m.add_adapter("other", make_config(method, r=8, targets=["q_proj", "v_proj"]))
    torch.testing.assert_close(logits(m, tokens), out_a)
    m.set_adapter("other")
    out_b = logits(m, tokens)
    assert not torch.allclose(out_b, out_a, atol=1e-3) and not torch.allclose(out_b, base_out, atol=1e-3)
    assert all(p.requires_grad for n, p in m.named_parameters() if ".other" in n)
    assert not any(p.requires_grad for n, p in m.named_parameters() if ".default" in n)
    m.set_adapter("default")
    torch.testing.assert_close(logits(m, tokens), out_a)
    m.save_pretrained(tmp_path)
    re = PeftModel.from_pretrained(copy.deepcopy(llama_base), tmp_path)
    re.load_adapter(os.path.join(tmp_path, "other"), adapter_name="other")
    re.set_adapter("other")
    torch.testing.assert_close(logits(re, tokens), out_b, rtol=0, atol=0)
    # merging one adapter then switching keeps outputs right
    m.set_adapter("other")
    m.merge_adapter()
    torch.testing.assert_close(logits(m, tokens), out_b, rtol=1e-5, atol=1e-5)
    m.unmerge_adapter()
    m.set_adapter("default")
    torch.testing.assert_close(logits(m, tokens), out_a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_only_adapter_params_get_grads_and_step_changes_output(method, llama, tokens):
    m = get_peft_model(llama, make_config(method, init_weights=True))
    m.train()
    before = logits(m, tokens)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(f"{method}_" in n for n in trainable)
    m(tokens, labels=tokens).loss.backward()
    for n, p in m.named_parameters():
        assert (p.grad is not None) == (n in trainable), n
    torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2).step()
    assert not torch.allclose(logits(m, tokens), before, atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_gradient_checkpointing_matches(method, llama_base, tokens):
    grads = []
    for gc in (False, True):
        torch.manual_seed(0)
        m = get_peft_model(copy.deepcopy(llama_base), make_config(method))
        m.train()
        if gc:
            m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
            m.enable_input_require_grads()
        m(tokens, labels=tokens).loss.backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys()
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_bf16_base(method, tokens):
    base = tiny_llama(dtype=torch.bfloat16)
    m = get_peft_model(copy.deepcopy(base), make_config(method))
    assert all(p.dtype == torch.float32 for n, p in m.named_parameters() if f"{method}_" in n)
    out = logits(m, tokens)
    assert out.dtype == torch.bfloat16
    m.train()
    m(tokens, labels=tokens).loss.backward()
    m.eval()
    m.merge_adapter()
    torch.testing.assert_close(logits(m, tokens).float(), out.float(), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("method", METHODS)
def test_low_cpu_mem_usage_load(method, llama_base, tokens, tmp_path):
    m = get_peft_model(copy.deepcopy(llama_base), make_config(method)).eval()
    out = logits(m, tokens)
    m.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(llama_base), tmp_path, low_cpu_mem_usage=True)
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}
    torch.testing.assert_close(logits(loaded, tokens), out, rtol=0, atol=0)
