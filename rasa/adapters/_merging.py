"""Merging for tuner layers whose whole update is one delta weight (RaSA, MoRA).

PEFT's LoRA layer implements ``merge``/``unmerge`` itself; RaSA and MoRA share this version:
``W ← W + ΔW`` per adapter (optionally checked for non-finite values), undone in reverse order.
A layer provides ``get_delta_weight(name)`` and ``has_adapter(name)``.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
from peft.tuners.tuners_utils import check_adapters_to_merge


class DeltaMergeMixin:
    def has_adapter(self, name: str) -> bool:
        raise NotImplementedError

    def merge(self, safe_merge: bool = False, adapter_names: Optional[list[str]] = None) -> None:
        adapter_names = check_adapters_to_merge(self, adapter_names)
        base = self.get_base_layer()
        for name in adapter_names:
            if not self.has_adapter(name):
                continue
            delta = self.get_delta_weight(name)
            if safe_merge:
                merged = base.weight.data + delta
                if not torch.isfinite(merged).all():
                    raise ValueError(f"NaNs detected in the merged weights. The adapter {name} seems to be broken")
                base.weight.data = merged
            else:
                base.weight.data += delta
            self.merged_adapters.append(name)

    def unmerge(self) -> None:
        if not self.merged:
            warnings.warn("Already unmerged. Nothing to do.")
            return
        base = self.get_base_layer()
        while self.merged_adapters:
            name = self.merged_adapters.pop()
            if self.has_adapter(name):
                base.weight.data -= self.get_delta_weight(name)
