"""RaSA tuner tests, in the style of PEFT's own tuner suite (tiny random Llama, fp32 unless stated)."""

import copy
import os

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file

from rasa.adapters import RasaConfig
from rasa.adapters.rasa import RasaLayer

from adapter_models import LLAMA_TARGETS, tiny_llama


def rasa(model, r=4, k=1, alpha=8.0, init_weights=False, **kw):
    cfg = RasaConfig(r=r, k=k, alpha=alpha, target_modules=list(kw.pop("targets", LLAMA_TARGETS)),
                     init_weights=init_weights, **kw)
    return get_peft_model(model, cfg)


def logits(model, tokens):
    with torch.no_grad():
        return model(tokens).logits


def rasa_layers(model):
    return [(n, m) for n, m in model.named_modules() if isinstance(m, RasaLayer)]


# --------------------------------------------------------------------------- config
def test_config_defaults_and_errors():
    assert RasaConfig(r=8).k == 1
    assert RasaConfig(r=16).k == 2
    assert RasaConfig(r=32).k == 4
    assert RasaConfig(r=4).k == 1  # max(r // 8, 1)
    assert RasaConfig(r=8, k=0).k == 0
    with pytest.raises(ValueError, match=r"\bk\b.*<= r"):
        RasaConfig(r=4, k=5)
    with pytest.raises(ValueError, match=r"\bk\b.*>= 0"):
        RasaConfig(r=4, k=-1)
    with pytest.raises(ValueError, match=r"\br\b"):
        RasaConfig(r=0)


def test_parameter_count_is_lora_plus_diagonals(llama):
    L, r, k = 3, 8, 2
    lora = get_peft_model(copy.deepcopy(llama), LoraConfig(r=r, target_modules=LLAMA_TARGETS))
    n_lora = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    m = rasa(llama, r=r, k=k)
    n_rasa = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert n_rasa == n_lora + L * len(LLAMA_TARGETS) * (r - k + L * k)


def test_initialisation(llama, tokens):
    base_out = logits(llama, tokens)
    m = rasa(copy.deepcopy(llama), r=8, k=2, alpha=32.0, init_weights=True)
    L = 3
    for _, layer in rasa_layers(m):
        d = layer.rasa_d["default"]
        assert d.shape == (8 - 2 + L * 2,)
        torch.testing.assert_close(d[:6], torch.full((6,), 32.0 / (2 * 6)))
        torch.testing.assert_close(d[6:], torch.full((L * 2,), 32.0 / (2 * L * 2)))
        assert torch.all(layer.rasa_B["default"] == 0)
        assert layer.rasa_A["default"].abs().sum() > 0
    for pool in m.base_model.rasa_shared_B["default"].values():
        assert torch.all(pool == 0)
    for pool in m.base_model.rasa_shared_A["default"].values():
        assert pool.shape[0] == L * 2 and pool.abs().sum() > 0
    torch.testing.assert_close(logits(m, tokens), base_out)  # B = 0: a fresh adapter is a no-op


# -------------------------------------------------------------------- shared storage
def test_pool_stored_once(llama, tmp_path):
    m = rasa(llama, r=4, k=1)
    L, T = 3, len(LLAMA_TARGETS)
    names = [n for n, _ in m.named_parameters() if "shared" in n]
    assert len(names) == 2 * T  # one A_S and one B_S per module type
    sd_keys = [k for k in m.state_dict() if "shared" in k]
    assert sorted(sd_keys) == sorted(names)  # no per-layer aliases
    # every layer of one type reads the very same tensor
    pools = m.base_model._rasa_pools
    for _, layer in rasa_layers(m):
        A_S, _ = pools.get("default", layer.rasa_group["default"])
        assert A_S is m.base_model.rasa_shared_A["default"][layer.rasa_group["default"]]
    # optimizer: one state entry per parameter object
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    n_params = sum(1 for p in m.parameters() if p.requires_grad)
    assert len(opt.param_groups[0]["params"]) == n_params == L * T * 3 + 2 * T
    m.save_pretrained(tmp_path)
    saved = load_file(os.path.join(tmp_path, "adapter_model.safetensors"))
    assert len([k for k in saved if "shared" in k]) == 2 * T
    assert len(saved) == L * T * 3 + 2 * T
    assert "base_model.rasa_shared_A.self_attn__q_proj" in saved


def test_k0_has_no_pool_and_k_equals_r_has_no_private(llama, tokens):
    m0 = rasa(copy.deepcopy(llama), r=4, k=0)
    assert len(m0.base_model.rasa_shared_A["default"]) == 0
    for _, layer in rasa_layers(m0):
        assert layer.rasa_d["default"].shape == (4,)
    mr = rasa(copy.deepcopy(llama), r=2, k=2)
    for _, layer in rasa_layers(mr):
        assert "default" not in layer.rasa_A and layer.rasa_d["default"].shape == (6,)
    for m in (m0, mr):
        out = logits(m, tokens)
        m.merge_adapter()
        torch.testing.assert_close(logits(m, tokens), out, rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------- PEFT tuner behaviour
def test_safe_merge_and_delta_weight_formula(llama):
    m = rasa(llama, r=4, k=1)
    name, layer = rasa_layers(m)[0]
    A, B, d = layer.rasa_A["default"], layer.rasa_B["default"], layer.rasa_d["default"]
    A_S, B_S = m.base_model._rasa_pools.get("default", layer.rasa_group["default"])
    full = torch.cat([B, B_S], 1) @ torch.diag(d) @ torch.cat([A, A_S], 0)  # Eq. 5 written out
    torch.testing.assert_close(layer.get_delta_weight("default"), full.detach(), rtol=1e-5, atol=1e-6)
    m.merge_adapter(safe_merge=True)


def test_save_load_roundtrip(llama_base, tokens, tmp_path):
    m = rasa(copy.deepcopy(llama_base), r=4, k=1, dropout=0.1)
    m.eval()
    out = logits(m, tokens)
    m.save_pretrained(tmp_path)
    loaded = PeftModel.from_pretrained(copy.deepcopy(llama_base), tmp_path)
    assert type(loaded.peft_config["default"]) is RasaConfig
    torch.testing.assert_close(logits(loaded, tokens), out, rtol=0, atol=0)
    assert not any(p.requires_grad for p in loaded.parameters())  # loaded for inference
    trainable = PeftModel.from_pretrained(copy.deepcopy(llama_base), tmp_path, is_trainable=True)
    assert any(p.requires_grad for n, p in trainable.named_parameters() if "shared" in n)
    torch.testing.assert_close(logits(trainable.merge_and_unload(), tokens), out, rtol=1e-5, atol=1e-5)


def test_two_adapters_switch(llama_base, tokens, tmp_path):
    base_out = logits(llama_base, tokens)
    m = rasa(copy.deepcopy(llama_base), r=4, k=1)
    out_a = logits(m, tokens)
    torch.manual_seed(123)
    m.add_adapter("other", RasaConfig(r=8, k=2, alpha=4.0, target_modules=["q_proj", "v_proj"], init_weights=False))
    torch.testing.assert_close(logits(m, tokens), out_a)  # adding does not activate
    # the new adapter is not trainable until it is activated
    assert not any(p.requires_grad for n, p in m.named_parameters() if ".other" in n)
    m.set_adapter("other")
    out_b = logits(m, tokens)
    assert not torch.allclose(out_b, out_a, atol=1e-3) and not torch.allclose(out_b, base_out, atol=1e-3)
    assert all(p.requires_grad for n, p in m.named_parameters() if ".other" in n)
    assert not any(p.requires_grad for n, p in m.named_parameters() if ".default" in n)
    assert len(m.base_model.rasa_shared_A["other"]) == 2
    m.set_adapter("default")
    torch.testing.assert_close(logits(m, tokens), out_a)
    m.save_pretrained(tmp_path)  # saves both adapters, each with its own pools
    re = PeftModel.from_pretrained(copy.deepcopy(llama_base), tmp_path)
    re.load_adapter(os.path.join(tmp_path, "other"), adapter_name="other")
    torch.testing.assert_close(logits(re, tokens), out_a, rtol=0, atol=0)
    re.set_adapter("other")
    torch.testing.assert_close(logits(re, tokens), out_b, rtol=0, atol=0)
    m.delete_adapter("other")
    assert "other" not in m.base_model.rasa_shared_A
    torch.testing.assert_close(logits(m, tokens), out_a)


def test_only_adapter_params_get_grads_and_step_changes_output(llama, tokens):
    m = rasa(llama, r=4, k=1, init_weights=True)
    m.train()
    before = logits(m, tokens)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable and all(("rasa_" in n) for n in trainable)
    loss = m(tokens, labels=tokens).loss
    loss.backward()
    for n, p in m.named_parameters():
        if n in trainable:
            assert p.grad is not None, n
        else:
            assert p.grad is None, n
    # the pools' gradient is non-zero at B = 0 init only on the B side (A gets zero grad through B_S = 0)
    assert all(p.grad.abs().sum() > 0 for n, p in m.named_parameters() if "rasa_shared_B" in n)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    opt.step()
    m.eval()
    assert not torch.allclose(logits(m, tokens), before, atol=1e-4)


def test_bf16_base(tokens):
    base = tiny_llama(dtype=torch.bfloat16)
    m = rasa(copy.deepcopy(base), r=4, k=1)
    assert all(p.dtype == torch.float32 for n, p in m.named_parameters() if "rasa_" in n)  # PEFT autocast
    out = logits(m, tokens)
    assert out.dtype == torch.bfloat16
    m.train()
    m(tokens, labels=tokens).loss.backward()
    m.eval()
    m.merge_adapter()
    torch.testing.assert_close(logits(m, tokens).float(), out.float(), rtol=0.05, atol=0.05)
    m2 = get_peft_model(copy.deepcopy(base), RasaConfig(r=4, target_modules=["q_proj"]), autocast_adapter_dtype=False)
    assert all(p.dtype == torch.bfloat16 for n, p in m2.named_parameters() if "rasa_" in n)


def test_deepcopy_keeps_pools_private_to_copy(llama, tokens):
    m = rasa(llama, r=4, k=1)
    m2 = copy.deepcopy(m)
    with torch.no_grad():
        for p in m2.base_model.rasa_shared_B["default"].values():
            p.add_(1.0)
    _, layer2 = rasa_layers(m2)[0]
    pool2 = layer2._pools.get("default", layer2.rasa_group["default"])[1]
    assert pool2 is m2.base_model.rasa_shared_B["default"][layer2.rasa_group["default"]]
    assert not torch.allclose(logits(m, tokens), logits(m2, tokens))


# ----------------------------------------------------------------- grouping errors
class _Block(torch.nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.proj = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        return self.proj(x)


class _Stack(torch.nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.layers = torch.nn.ModuleList(_Block(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.head = torch.nn.Linear(widths[-1], 2)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        get_peft_model(_Stack([8, 8, 16]), RasaConfig(r=2, k=1, target_modules=["proj"]))


def test_module_without_layer_index_is_an_error():
    with pytest.raises(ValueError, match="no layer index"):
        get_peft_model(_Stack([8, 8, 8]), RasaConfig(r=2, k=1, target_modules=["proj", "head"]))


def test_non_llama_stack_and_layers_to_transform():
    model = _Stack([8, 8, 8, 8])
    m = get_peft_model(model, RasaConfig(r=2, k=1, target_modules=["proj"], layers_to_transform=[0, 2],
                                         layers_pattern="layers"))
    summary = m.base_model.rasa_summary()
    assert list(summary) == ["proj"] and summary["proj"]["num_layers"] == 2
    assert summary["proj"]["effective_rank"] == 2 - 1 + 2 * 1
    m(torch.randn(3, 8)).sum().backward()


# ------------------------------------------------------------------ rank structure
@pytest.mark.parametrize("r,k", [(4, 1), (4, 2), (4, 0)])
def test_merged_update_rank_and_shared_column_space(r, k):
    L = 4
    model = tiny_llama(num_layers=L, hidden=64, dtype=torch.float64)
    m = get_peft_model(model, RasaConfig(r=r, k=k, target_modules=["q_proj", "down_proj"], init_weights=False))
    with torch.no_grad():  # random, non-degenerate diagonals
        for _, layer in rasa_layers(m):
            layer.rasa_d["default"].uniform_(0.5, 1.5)
    by_type: dict[str, list[torch.Tensor]] = {}
    for _, layer in rasa_layers(m):
        by_type.setdefault(layer.rasa_group["default"], []).append(layer.get_delta_weight("default").detach())
    eff = r - k + L * k
    for group, deltas in by_type.items():
        assert len(deltas) == L
        for dw in deltas:
            assert torch.linalg.matrix_rank(dw).item() == eff, group
        d0, d1 = deltas[0], deltas[1]
        union = torch.linalg.matrix_rank(torch.cat([d0, d1], dim=1)).item()
        shared_dims = 2 * eff - union  # dim(col(d0) ∩ col(d1))
        assert shared_dims == L * k, group


def test_split_backward_matches_autograd_of_eq5():
    """The hand-written backward of the split forward gives autograd's gradients of Eq. 5 written with
    concatenation."""
    torch.manual_seed(0)
    model = tiny_llama(num_layers=2, hidden=32, dtype=torch.float64)
    m = rasa(model, r=4, k=2)
    m.train()
    _, layer = rasa_layers(m)[0]
    x = torch.randn(3, 5, 32, dtype=torch.float64, requires_grad=True)
    layer(x).square().sum().backward()
    got = [x.grad.clone()] + [t.grad.clone() for t in (layer.rasa_A["default"], layer.rasa_B["default"],
                                                      layer.rasa_d["default"])]
    A_S, B_S = m.base_model._rasa_pools.get("default", layer.rasa_group["default"])
    got += [A_S.grad.clone(), B_S.grad.clone()]
    for t in [x, layer.rasa_A["default"], layer.rasa_B["default"], layer.rasa_d["default"], A_S, B_S]:
        t.grad = None
    W = layer.base_layer
    A, B, d = layer.rasa_A["default"], layer.rasa_B["default"], layer.rasa_d["default"]
    y = W(x) + x @ (torch.cat([B, B_S], 1) @ torch.diag(d) @ torch.cat([A, A_S], 0)).T
    y.square().sum().backward()
    want = [x.grad, A.grad, B.grad, d.grad, A_S.grad, B_S.grad]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)
