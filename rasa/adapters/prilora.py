"""PriLoRA (Benedek & Wolf, EACL Findings 2024): rank increasing linearly with depth + pruning of A while training.

PriLoRA is not in PEFT. It is built here on PEFT's LoRA (so it saves, loads and merges as a LoRA adapter) plus a
``TrainerCallback`` that prunes. Our reading of the method, with every choice the PriLoRA and RaSA papers leave open
marked as ours:

Ranks
    Layer l (0-based, of L adapted layers) gets rank ``r_l = round(r/2 + r*(l+1)/L)`` (Python rounding): ranks grow
    linearly from about r/2 in the first layer to 3r/2 in the last, averaging about r. PriLoRA states the linear
    increase; the exact endpoints and rounding are ours, chosen because they reproduce the RaSA paper's PriLoRA
    counts for the 8B models exactly (sum of ranks 260 / 520 / 1040 for r = 8 / 16 / 32, i.e. 21.3 / 42.6 / 85.2 M
    trainable parameters). All modules of one layer share its rank. LoRA's scale is ``alpha / r_l`` (PEFT's
    ``rank_pattern`` default).

Pruning
    PriLoRA prunes the A matrix of every LoRA pair by an importance that combines the magnitude of A's entries and
    accumulated statistics of the layer input. We keep, per adapted module, an exponential moving average of
    ``|A_ij| * ||X_j||_2`` (X_j: the j-th input feature over the tokens seen since the last optimizer step), i.e. one
    importance buffer the size of A; every ``interval`` optimizer steps after ``start`` (a fraction of the run) the
    ``ratio`` least important entries of each row of A are set to zero (re-selected at each pruning step, so an
    entry that the optimizer regrows strongly can come back). Defaults (ours): beta 0.85, ratio 0.5, interval 10,
    start 10 % of the steps. The "extra" parameters we report are these importance buffers (sum of A sizes); the RaSA
    paper reports exactly half of the trainable count (10.7 / 21.3 / 42.6 M), which our buffers (10.1 / 20.2 /
    40.5 M) do not reproduce: the paper does not say what its PriLoRA code kept.

Limits: the importance state lives in the callback (not in checkpoints), so a resumed run restarts the averages;
fused MoE expert weights are not supported (refused by :mod:`rasa.methods`).
"""

from __future__ import annotations

import re

import torch
from torch import nn
from transformers import TrainerCallback


def prilora_ranks(r: int, num_layers: int) -> list[int]:
    """Per-layer ranks, increasing linearly with depth (see module docstring)."""
    return [max(1, round(r / 2 + r * (layer + 1) / num_layers)) for layer in range(num_layers)]


def prilora_rank_pattern(model: nn.Module, target_modules, r: int) -> tuple[dict[str, int], int]:
    """PEFT LoRA ``rank_pattern`` giving every adapted layer its PriLoRA rank; returns (pattern, L)."""
    from rasa.adapters.rasa.model import split_layer_index

    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    indices = set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf in targets or any(name.endswith("." + t) for t in targets):
            split = split_layer_index(name)
            if split is None:
                raise ValueError(f"PriLoRA needs a layer index in every targeted module name; {name!r} has none.")
            indices.add((split[0], split[1]))
    if not indices:
        raise ValueError(f"PriLoRA: no nn.Linear module matches target_modules={targets}.")
    prefixes = {p for p, _ in indices}
    if len(prefixes) > 1:
        raise ValueError(f"PriLoRA: targeted modules sit in several layer lists {sorted(prefixes)}; ambiguous depth.")
    (prefix,) = prefixes
    layer_ids = sorted(i for _, i in indices)
    ranks = prilora_ranks(r, len(layer_ids))
    pattern = {rf"{re.escape(prefix.rsplit('.', 1)[-1])}\.{i}\..*": rk for i, rk in zip(layer_ids, ranks)}
    return pattern, len(layer_ids)


def _lora_layers(model: nn.Module, adapter: str = "default"):
    from peft.tuners.lora import LoraLayer

    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and adapter in getattr(module, "lora_A", {}):
            if isinstance(module.lora_A[adapter], nn.Linear):
                yield name, module


def prilora_extra_parameters(model: nn.Module, adapter: str = "default") -> int:
    """Size of the importance buffers the pruner keeps (one per A matrix)."""
    return sum(m.lora_A[adapter].weight.numel() for _, m in _lora_layers(model, adapter))


class PriLoraPruner(TrainerCallback):
    """Importance-based pruning of LoRA's A matrices during training (see module docstring)."""

    def __init__(self, model: nn.Module, total_steps: int | None = None, ratio: float = 0.5, beta: float = 0.85,
                 interval: int = 10, start: float = 0.1, adapter: str = "default"):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"PriLoraPruner.ratio must be in [0, 1), got {ratio}.")
        self.ratio, self.beta, self.interval, self.adapter = ratio, beta, max(1, interval), adapter
        self.start_step = int(start * total_steps) if total_steps else 0
        self.layers = dict(_lora_layers(model, adapter))
        if not self.layers:
            raise ValueError("PriLoraPruner: the model has no LoRA layers for adapter " + repr(adapter))
        self.importance: dict[str, torch.Tensor] = {}
        self._sq: dict[str, torch.Tensor] = {}
        self._handles = [m.register_forward_pre_hook(self._hook(n)) for n, m in self.layers.items()]

    def _hook(self, name):
        def accumulate(module, args):
            if not module.training or not args:
                return
            x = args[0].detach()
            sq = x.float().pow(2).reshape(-1, x.shape[-1]).sum(0)
            self._sq[name] = sq if name not in self._sq else self._sq[name] + sq

        return accumulate

    @torch.no_grad()
    def step(self, global_step: int) -> None:
        """Update the importance averages and prune if due (call after the optimizer step)."""
        for name, module in self.layers.items():
            A = module.lora_A[self.adapter].weight
            if name not in self._sq:
                continue
            norm = self._sq.pop(name).sqrt().to(A.device)
            score = A.detach().abs().float() * norm[None, :]
            if name in self.importance:
                self.importance[name].mul_(self.beta).add_(score, alpha=1 - self.beta)
            else:
                self.importance[name] = score
        if global_step < self.start_step or global_step % self.interval or self.ratio == 0.0:
            return
        for name, imp in self.importance.items():
            A = self.layers[name].lora_A[self.adapter].weight
            n_prune = int(self.ratio * A.shape[1])
            if n_prune == 0:
                continue
            idx = imp.topk(n_prune, dim=1, largest=False).indices
            A.data.scatter_(1, idx.to(A.device), 0.0)

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.step(state.global_step)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
