"""Turns a method name and a rank into a model ready to train, through :mod:`rasa.method_registry`.

Mixtral-style MoE models (transformers 5 stores the experts as fused 3-D parameters ``experts.gate_up_proj`` and
``experts.down_proj``, not as ``nn.Linear`` modules): when ``target_modules`` names the MLP projections
(``gate_proj``/``up_proj``/``down_proj`` or the v4 names ``w1``/``w3``/``w2``) and the model has no such linear
modules, a method whose entry has ``expert_parameters`` (``lora``) adapts the fused expert parameters through PEFT's
``target_parameters`` (per expert rank r; the fused ``gate_up_proj`` gets one LoRA pair, so gate and up must be
requested together; PEFT allows no dropout there, so ``dropout`` must be 0), ``fft`` trains them, and every other
method raises ``NotImplementedError`` instead of silently adapting attention only. Note for reproducing the paper's
Mixtral-8x7B run: under transformers 4 the experts were ``nn.Linear`` modules named ``w1``/``w2``/``w3``, so the
authors' seven Llama target names matched only Mixtral's attention projections (the paper's §3.2); pass
``["q_proj", "k_proj", "v_proj", "o_proj"]`` for Mixtral to reproduce that (every method supports it).
"""

from __future__ import annotations

import torch
from torch import nn

from rasa import method_registry
from rasa.method_registry import BuildArgs

_MLP_NAMES = {"gate_proj": "gate_up_proj", "up_proj": "gate_up_proj", "w1": "gate_up_proj", "w3": "gate_up_proj",
              "down_proj": "down_proj", "w2": "down_proj"}


def _task_type(model: nn.Module):
    return "CAUSAL_LM" if type(model).__name__.endswith("ForCausalLM") else None


def fused_expert_parameters(model: nn.Module) -> list[str]:
    """Names of fused (3-D) MoE expert weight parameters, e.g. ``model.layers.0.mlp.experts.gate_up_proj``."""
    out = []
    for mod_name, module in model.named_modules():
        if not type(module).__name__.endswith("Experts"):
            continue
        for p_name, p in module.named_parameters(recurse=False):
            if p.dim() == 3:
                out.append(f"{mod_name}.{p_name}" if mod_name else p_name)
    return out


def _split_expert_targets(model: nn.Module, method: str, target_modules: list[str]) -> tuple[list[str], list[str]]:
    """(linear targets, fused expert parameter suffixes) for this model; raises where the method cannot do it."""
    fused = fused_expert_parameters(model)
    if not fused:
        return list(target_modules), []
    linear_leaves = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    mlp = [t for t in target_modules if t in _MLP_NAMES and t not in linear_leaves]
    if not mlp:
        return list(target_modules), []
    rest = [t for t in target_modules if t not in mlp]
    entry = method_registry.get(method)
    if not entry.has_rank:
        return rest, []
    if not entry.expert_parameters:
        able = [m for m in method_registry.names() if method_registry.get(m).expert_parameters]
        raise NotImplementedError(
            f"{method!r} cannot adapt this model's MoE experts: they are fused 3-D parameters "
            f"({fused[0]}, ...), not nn.Linear modules, and only PEFT's LoRA (methods {able}) can target them. "
            f"Requested expert targets {mlp}; drop them from target_modules to adapt {rest or 'nothing else'} only."
        )
    wanted = {_MLP_NAMES[t] for t in mlp}
    if "gate_up_proj" in wanted and not ({"gate_proj", "w1"} & set(mlp) and {"up_proj", "w3"} & set(mlp)):
        raise ValueError(
            "The experts store gate and up projections fused in one `gate_up_proj` parameter: request both "
            f"gate_proj and up_proj (or w1 and w3), or neither; got {mlp}."
        )
    leaves = {f.rsplit(".", 1)[-1] for f in fused}
    missing = wanted - leaves
    if missing:
        raise NotImplementedError(f"Fused expert parameters {sorted(missing)} not found in this model ({fused[:2]}).")
    return rest, sorted(f"experts.{w}" for w in wanted)


def apply_method(model, method: str, r: int, *, k: int | None, alpha: float, dropout: float,
                 target_modules: list[str], total_steps: int | None = None) -> torch.nn.Module:
    """Wrap ``model`` for training with ``method`` at rank ``r`` (its entry in :mod:`rasa.method_registry`)."""
    entry = method_registry.get(method)
    if not entry.has_rank:
        _split_expert_targets(model, method, target_modules)
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    from peft import get_peft_model

    import rasa.adapters  # noqa: F401  (registers RaSA / MoRA with PEFT)

    linear_targets, expert_params = _split_expert_targets(model, method, target_modules)
    if expert_params and dropout:
        raise ValueError(
            f"LoRA on fused MoE expert parameters ({expert_params}) cannot use dropout (PEFT's ParamWrapper refuses "
            f"lora_dropout != 0); pass dropout=0.0, or drop the MLP names from target_modules. Got dropout={dropout}."
        )
    args = BuildArgs(r=r, k=k, alpha=alpha, dropout=dropout, target_modules=linear_targets,
                     target_parameters=expert_params, task_type=_task_type(model), total_steps=total_steps)
    peft_model = get_peft_model(model, entry.build(model, args))
    if entry.after_build:
        entry.after_build(peft_model)
    peft_model._rasa_method = method
    peft_model._rasa_total_steps = total_steps
    return peft_model


def _unique_trainable(model: nn.Module) -> int:
    seen, total = set(), 0
    for p in model.parameters():
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def parameter_counts(model, method: str) -> dict:
    """``{"trainable": int, "extra": int}``; "extra" = the method's importance state (AdaLoRA / PriLoRA, paper
    Table 2), counted by its registry entry. Works on the meta device."""
    entry = method_registry.get(method)
    extra = entry.extra_parameters(model) if entry.extra_parameters else 0
    return {"trainable": _unique_trainable(model), "extra": extra}


def training_callbacks(model, method: str) -> list:
    """``TrainerCallback`` instances the method needs while training (AdaLoRA's budget, PriLoRA's pruning); each
    also has ``step(global_step)`` for a hand-written loop."""
    entry = method_registry.get(method)
    return entry.callbacks(model) if entry.callbacks else []
