"""MoRA tuner model (no shared state: every targeted ``nn.Linear`` gets its own square matrix)."""

from __future__ import annotations

from typing import Optional

from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from torch import nn

from .._unsupported import UnsupportedFeatures
from ..rasa.config import TRANSFORMERS_MODELS_TO_RASA_TARGET_MODULES_MAPPING
from .config import MoraConfig
from .layer import Linear, MoraLayer


class MoraModel(UnsupportedFeatures, BaseTuner):
    method_name = "MoRA"
    prefix: str = "mora_"
    tuner_layer_cls = MoraLayer
    target_module_mapping = TRANSFORMERS_MODELS_TO_RASA_TARGET_MODULES_MAPPING

    def _create_and_replace(self, mora_config: MoraConfig, adapter_name: str, target: nn.Module, target_name: str,
                            parent: nn.Module, current_key: str, parameter_name: Optional[str] = None,
                            **optional_kwargs) -> None:
        if parameter_name is not None:
            raise ValueError("MoRA does not support `target_parameters` (fused MoE experts).")
        kwargs = {"r": mora_config.r, "dropout": mora_config.dropout, "init_weights": mora_config.init_weights}
        if isinstance(target, MoraLayer):
            target.update_layer(adapter_name, **kwargs)
            return
        if isinstance(target, BaseTunerLayer):
            raise TypeError(f"{current_key!r} already carries a different PEFT method ({type(target).__name__}).")
        if not isinstance(target, nn.Linear):
            raise TypeError(
                f"MoRA can only adapt torch.nn.Linear modules; target {current_key!r} is a {type(target).__name__}."
            )
        new_module = Linear(target, adapter_name, **kwargs)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)
        self._replace_module(parent, target_name, new_module, target)
