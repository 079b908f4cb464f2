"""The built-in methods' PEFT configs, extra-state counts and training callbacks (entries of
:mod:`rasa.method_registry`).

=========  =====================================================================================================
method     what it builds
=========  =====================================================================================================
lora       PEFT ``LoraConfig(r, lora_alpha=alpha, lora_dropout=dropout)``
rasa       :class:`rasa.adapters.RasaConfig` (k defaults to :func:`rasa.method_registry.default_k`)
mora       :class:`rasa.adapters.MoraConfig` (type 6; alpha unused, scale 1)
vera       PEFT ``VeraConfig(r, vera_dropout=dropout)``; the paper runs it at r = 1024 (pass r=1024)
olora      PEFT LoRA with ``init_lora_weights="olora"`` (QR initialisation; it rewrites the base weights)
adalora    PEFT ``AdaLoraConfig(init_r=round(1.5 r), target_r=r)``; needs ``total_steps``; its budget schedule
           (``tinit`` 10 %, ``tfinal`` 20 % of the steps, ``deltaT`` 10) is ours: the paper does not give it
prilora    PEFT LoRA with per-layer ranks increasing with depth + :class:`rasa.adapters.prilora.PriLoraPruner`
fft        no adapter: the model itself, every parameter trainable (:func:`rasa.methods.apply_method`)
=========  =====================================================================================================

Every builder is ``(model, BuildArgs) -> PeftConfig``. PEFT, torch and transformers are imported inside the
functions, so that the registry stays cheap to import.
"""

from __future__ import annotations

import math


def lora(model, a):
    from peft import LoraConfig

    return LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout, target_modules=a.target_modules,
                      target_parameters=a.target_parameters or None, task_type=a.task_type)


def olora(model, a):
    from peft import LoraConfig

    return LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout, target_modules=a.target_modules,
                      init_lora_weights="olora", task_type=a.task_type)


def rasa(model, a):
    from rasa.adapters import RasaConfig

    return RasaConfig(r=a.r, k=a.k, alpha=a.alpha, dropout=a.dropout, target_modules=a.target_modules,
                      task_type=a.task_type)


def mora(model, a):
    from rasa.adapters import MoraConfig

    return MoraConfig(r=a.r, dropout=a.dropout, target_modules=a.target_modules, task_type=a.task_type)


def vera(model, a):
    from peft import VeraConfig

    return VeraConfig(r=a.r, vera_dropout=a.dropout, target_modules=a.target_modules, task_type=a.task_type)


def adalora(model, a):
    from peft import AdaLoraConfig

    if not a.total_steps:
        raise ValueError("adalora needs total_steps (AdaLoRA schedules its rank budget over the run).")
    tinit, tfinal = int(0.1 * a.total_steps), int(0.2 * a.total_steps)
    if tinit >= a.total_steps - tfinal:
        tinit, tfinal = 0, 0
    return AdaLoraConfig(init_r=math.floor(1.5 * a.r + 0.5), target_r=a.r, lora_alpha=a.alpha,
                         lora_dropout=a.dropout, target_modules=a.target_modules, total_step=a.total_steps,
                         tinit=tinit, tfinal=tfinal, deltaT=10, task_type=a.task_type)


def prilora(model, a):
    from peft import LoraConfig

    from rasa.adapters.prilora import prilora_rank_pattern

    pattern, _ = prilora_rank_pattern(model, a.target_modules, a.r)
    return LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout, target_modules=a.target_modules,
                      rank_pattern=pattern, task_type=a.task_type)


def freeze_ranknum(peft_model) -> None:
    """AdaLoRA's ``ranknum`` is a constant divisor; PEFT re-creates it with requires_grad=True when it moves the
    adapter to another device (seen on the meta device), which would let the optimizer change it."""
    for name, p in peft_model.named_parameters():
        if ".ranknum." in name:
            p.requires_grad_(False)


def adalora_extra(model) -> int:
    """AdaLoRA's two exponential moving averages (sensitivity, uncertainty) per trainable tensor: 2x trainable
    (PEFT also keeps the last step's raw sensitivity, a third copy, as a temporary)."""
    return 2 * sum(p.numel() for n, p in model.named_parameters() if "lora_" in n and p.requires_grad)


def prilora_extra(model) -> int:
    """One importance buffer per A matrix (see :mod:`rasa.adapters.prilora`)."""
    from rasa.adapters.prilora import prilora_extra_parameters

    return prilora_extra_parameters(model)


def adalora_callbacks(model) -> list:
    """AdaLoRA's budget: ``update_and_allocate`` after every optimizer step, before the gradients are zeroed."""
    from transformers import TrainerCallback

    class AdaLoraBudget(TrainerCallback):
        def __init__(self, peft_model):
            self.peft_model = peft_model

        def step(self, global_step: int) -> None:
            self.peft_model.base_model.update_and_allocate(global_step)

        def on_optimizer_step(self, args, state, control, **kwargs):
            self.step(state.global_step)

    return [AdaLoraBudget(model)]


def prilora_callbacks(model) -> list:
    """PriLoRA's pruning of A matrices over the run."""
    from rasa.adapters.prilora import PriLoraPruner

    return [PriLoraPruner(model, total_steps=getattr(model, "_rasa_total_steps", None))]
