"""The method registry: every method builds, adapts exactly the targets (none skipped silently), trains a step."""

import pytest
import torch
from peft.tuners.tuners_utils import BaseTunerLayer

from rasa import method_registry, methods

from adapter_models import LLAMA_TARGETS, tiny_llama, tiny_mixtral

ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]


def build(model, method, r=4, targets=LLAMA_TARGETS, dropout=0.05):
    return methods.apply_method(model, method, r, k=None, alpha=8.0, dropout=dropout, target_modules=list(targets),
                                total_steps=20)


def adapted(model):
    """(module names wrapped by a tuner layer, fused parameter names adapted)."""
    names = {n for n, m in model.base_model.model.named_modules()
             if isinstance(m, BaseTunerLayer) and not n.endswith("base_layer")}
    params = list(getattr(model.base_model, "targeted_parameter_names", []))
    return names, params


def test_unknown_method():
    with pytest.raises(ValueError, match="fft, vera, lora, mora, olora, adalora, prilora, rasa"):
        methods.apply_method(tiny_llama(), "dora", 4, k=None, alpha=8, dropout=0.0, target_modules=ATTN)
    with pytest.raises(ValueError, match="known methods"):
        methods.parameter_counts(tiny_llama(), "dora")


@pytest.mark.parametrize("method", method_registry.names())
def test_llama_every_target_adapted(method):
    base = tiny_llama()
    n_base = sum(p.numel() for p in base.parameters())
    model = build(base, method)
    x = torch.randint(0, 97, (2, 8))
    model.train()
    model(x, labels=x).loss.backward()
    counts = methods.parameter_counts(model, method)
    if method == "fft":
        assert counts == {"trainable": n_base, "extra": 0}
        return
    names, params = adapted(model)
    expected = {f"model.layers.{i}.{blk}.{t}" for i in range(3) for t in LLAMA_TARGETS
                for blk in (["self_attn"] if t in ATTN else ["mlp"])}
    assert names == expected and params == []
    assert 0 < counts["trainable"] < n_base
    assert (counts["extra"] > 0) == (method in ("adalora", "prilora"))
    # every adapted module really has trainable adapter weights with gradients
    for n in expected:
        module = model.base_model.model.get_submodule(n)
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), n


@pytest.mark.parametrize("method", [m for m in method_registry.names() if method_registry.get(m).has_rank])
def test_mixtral_attention_targets(method):
    model = build(tiny_mixtral(), method, targets=ATTN)
    names, params = adapted(model)
    assert names == {f"model.layers.{i}.self_attn.{t}" for i in range(2) for t in ATTN} and params == []


def test_mixtral_experts_lora_adapts_fused_parameters_others_refuse():
    model = build(tiny_mixtral(), "lora", dropout=0.0)
    names, params = adapted(model)
    attention = {f"model.layers.{i}.self_attn.{t}" for i in range(2) for t in ATTN}
    assert {n for n in names if "self_attn" in n} == attention
    assert sorted(params) == sorted(f"model.layers.{i}.mlp.experts.{p}" for i in range(2)
                                    for p in ("gate_up_proj", "down_proj"))
    x = torch.randint(0, 97, (2, 8))
    model(x, labels=x).loss.backward()
    with pytest.raises(ValueError, match="dropout"):
        build(tiny_mixtral(), "lora", dropout=0.05)
    with pytest.raises(ValueError, match="gate_proj and up_proj"):
        build(tiny_mixtral(), "lora", targets=ATTN + ["gate_proj", "down_proj"], dropout=0.0)
    for method in ("rasa", "mora", "vera", "olora", "adalora", "prilora"):
        with pytest.raises(NotImplementedError, match="fused 3-D parameters"):
            build(tiny_mixtral(), method)
    fft = build(tiny_mixtral(), "fft")
    assert all(p.requires_grad for p in fft.parameters())


def test_prilora_ranks_and_pruning():
    from rasa.adapters.prilora import PriLoraPruner, prilora_ranks

    assert sum(prilora_ranks(8, 32)) == 260 and sum(prilora_ranks(16, 32)) == 520
    assert prilora_ranks(8, 32) == sorted(prilora_ranks(8, 32))
    model = build(tiny_llama(num_layers=4), "prilora", r=8)
    ranks = {n: m.r["default"] for n, m in model.named_modules() if hasattr(m, "r") and isinstance(m.r, dict)
             and "default" in m.r}
    per_layer = [ranks[f"base_model.model.model.layers.{i}.self_attn.q_proj"] for i in range(4)]
    assert per_layer == prilora_ranks(8, 4) and per_layer[0] < per_layer[-1]
    pruner = PriLoraPruner(model, ratio=0.5, interval=1, start=0.0)
    x = torch.randint(0, 97, (2, 8))
    model.train()
    model(x, labels=x).loss.backward()
    pruner.step(1)
    A = model.base_model.model.model.layers[0].self_attn.q_proj.lora_A["default"].weight
    assert ((A == 0).sum(1) >= A.shape[1] // 2).all()
    assert methods.parameter_counts(model, "prilora")["extra"] == sum(t.numel() for t in pruner.importance.values())
    pruner.remove()


@pytest.mark.parametrize("method", ["adalora", "prilora"])
def test_callbacks_run_under_trainer(method, tmp_path):
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    model = build(tiny_llama(), method)
    ids = torch.randint(0, 97, (8, 8)).tolist()
    data = Dataset.from_dict({"input_ids": ids, "labels": ids})
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=4, use_cpu=True,
                             report_to="none", disable_tqdm=True, save_strategy="no", logging_steps=1)
    cbs = methods.training_callbacks(model, method)
    Trainer(model=model, args=args, train_dataset=data, callbacks=cbs).train()
    if method == "prilora":
        assert cbs[0].importance  # statistics were collected during training
