"""The method registry: one place that turns a method name and a rank into a model ready to train.

=========  =====================================================================================================
method     what it builds
=========  =====================================================================================================
lora       PEFT ``LoraConfig(r, lora_alpha=alpha, lora_dropout=dropout)``
rasa       :class:`rasa.adapters.RasaConfig` (k defaults to ``max(r // 8, 1)``)
mora       :class:`rasa.adapters.MoraConfig` (type 6; alpha unused, scale 1)
vera       PEFT ``VeraConfig(r, vera_dropout=dropout)``; the paper runs it at r = 1024 (pass r=1024)
olora      PEFT LoRA with ``init_lora_weights="olora"`` (QR initialisation; it rewrites the base weights)
adalora    PEFT ``AdaLoraConfig(init_r=round(1.5 r), target_r=r)``; needs ``total_steps``; its budget schedule
           (``tinit`` 10 %, ``tfinal`` 20 % of the steps, ``deltaT`` 10) is ours: the paper does not give it
prilora    PEFT LoRA with per-layer ranks increasing with depth + :class:`rasa.adapters.prilora.PriLoraPruner`
fft        the model itself, every parameter trainable
=========  =====================================================================================================

Mixtral-style MoE models (transformers 5 stores the experts as fused 3-D parameters ``experts.gate_up_proj`` and
``experts.down_proj``, not as ``nn.Linear`` modules): when ``target_modules`` names the MLP projections
(``gate_proj``/``up_proj``/``down_proj`` or the v4 names ``w1``/``w3``/``w2``) and the model has no such linear
modules, ``lora`` adapts the fused expert parameters through PEFT's ``target_parameters`` (per expert rank r; the
fused ``gate_up_proj`` gets one LoRA pair, so gate and up must be requested together; PEFT allows no dropout there,
so ``dropout`` must be 0), ``fft`` trains them, and every
other method raises ``NotImplementedError`` instead of silently adapting attention only. Note for reproducing the
paper's Mixtral-8x7B run: under transformers 4 the experts were ``nn.Linear`` modules named ``w1``/``w2``/``w3``, so
the authors' seven Llama target names matched only Mixtral's attention projections (``paper.md`` §3.2); pass
``["q_proj", "k_proj", "v_proj", "o_proj"]`` for Mixtral to reproduce that (every method supports it).
"""

from __future__ import annotations

import math

import torch
from torch import nn

METHODS: tuple[str, ...] = ("lora", "rasa", "mora", "vera", "olora", "adalora", "prilora", "fft")

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
    if method == "fft":
        return rest, []
    if method != "lora":
        raise NotImplementedError(
            f"{method!r} cannot adapt this model's MoE experts: they are fused 3-D parameters "
            f"({fused[0]}, ...), not nn.Linear modules, and only PEFT's LoRA (method 'lora') can target them. "
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
    """Wrap ``model`` for training with ``method`` at rank ``r`` (see the module docstring)."""
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; known methods: {', '.join(METHODS)}.")
    if method == "fft":
        _split_expert_targets(model, method, target_modules)
        for p in model.parameters():
            p.requires_grad_(True)
        return model

    import rasa.adapters  # noqa: F401  (registers RaSA / MoRA with PEFT)
    from peft import AdaLoraConfig, LoraConfig, VeraConfig, get_peft_model

    from rasa.adapters import MoraConfig, RasaConfig

    linear_targets, expert_params = _split_expert_targets(model, method, target_modules)
    task = _task_type(model)
    if expert_params and dropout:
        raise ValueError(
            f"LoRA on fused MoE expert parameters ({expert_params}) cannot use dropout (PEFT's ParamWrapper refuses "
            f"lora_dropout != 0); pass dropout=0.0, or drop the MLP names from target_modules. Got dropout={dropout}."
        )
    if method == "lora":
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=linear_targets,
                            target_parameters=expert_params or None, task_type=task)
    elif method == "olora":
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=linear_targets,
                            init_lora_weights="olora", task_type=task)
    elif method == "rasa":
        config = RasaConfig(r=r, k=k, alpha=alpha, dropout=dropout, target_modules=linear_targets, task_type=task)
    elif method == "mora":
        config = MoraConfig(r=r, dropout=dropout, target_modules=linear_targets, task_type=task)
    elif method == "vera":
        config = VeraConfig(r=r, vera_dropout=dropout, target_modules=linear_targets, task_type=task)
    elif method == "adalora":
        if not total_steps:
            raise ValueError("adalora needs total_steps (AdaLoRA schedules its rank budget over the run).")
        tinit, tfinal = int(0.1 * total_steps), int(0.2 * total_steps)
        if tinit >= total_steps - tfinal:
            tinit, tfinal = 0, 0
        config = AdaLoraConfig(init_r=int(math.floor(1.5 * r + 0.5)), target_r=r, lora_alpha=alpha,
                               lora_dropout=dropout, target_modules=linear_targets, total_step=total_steps,
                               tinit=tinit, tfinal=tfinal, deltaT=10, task_type=task)
    else:  # prilora
        from rasa.adapters.prilora import prilora_rank_pattern

        pattern, _ = prilora_rank_pattern(model, linear_targets, r)
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=linear_targets,
                            rank_pattern=pattern, task_type=task)
    peft_model = get_peft_model(model, config)
    if method == "adalora":
        # AdaLoRA's `ranknum` is a constant divisor; PEFT re-creates it with requires_grad=True when it moves the
        # adapter to another device (seen on the meta device), which would let the optimizer change it.
        for name, p in peft_model.named_parameters():
            if ".ranknum." in name:
                p.requires_grad_(False)
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
    """``{"trainable": int, "extra": int}``; "extra" = importance state of AdaLoRA / PriLoRA (paper Table 2).

    AdaLoRA: its two exponential moving averages (sensitivity, uncertainty) per trainable tensor, i.e. 2x trainable
    (PEFT also keeps the last step's raw sensitivity, a third copy, as a temporary). PriLoRA: one importance buffer
    per A matrix (see :mod:`rasa.adapters.prilora`). Works on the meta device.
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; known methods: {', '.join(METHODS)}.")
    trainable = _unique_trainable(model)
    extra = 0
    if method == "adalora":
        extra = 2 * sum(p.numel() for n, p in model.named_parameters() if "lora_" in n and p.requires_grad)
    elif method == "prilora":
        from rasa.adapters.prilora import prilora_extra_parameters

        extra = prilora_extra_parameters(model)
    return {"trainable": trainable, "extra": extra}


class AdaLoraCallback:
    """Calls AdaLoRA's ``update_and_allocate`` after every optimizer step, before the gradients are zeroed."""

    def __new__(cls, model):
        from transformers import TrainerCallback

        class _AdaLora(TrainerCallback):
            def __init__(self, peft_model):
                self.peft_model = peft_model

            def on_optimizer_step(self, args, state, control, **kwargs):
                self.peft_model.base_model.update_and_allocate(state.global_step)

        return _AdaLora(model)


def training_callbacks(model, method: str) -> list:
    """``TrainerCallback`` instances the method needs while training (AdaLoRA's budget, PriLoRA's pruning)."""
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; known methods: {', '.join(METHODS)}.")
    if method == "adalora":
        return [AdaLoraCallback(model)]
    if method == "prilora":
        from rasa.adapters.prilora import PriLoraPruner

        return [PriLoraPruner(model, total_steps=getattr(model, "_rasa_total_steps", None))]
    return []
