"""Configuration of RaSA (Rank-Sharing Low-Rank Adaptation, He et al., ICLR 2025)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from peft.config import PeftConfig

from rasa.method_registry import default_k

from .._registry import ExtraPeftType

#: Llama/Mistral/Mixtral-style decoders: the seven projections the paper adapts.
LLAMA_LIKE_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TRANSFORMERS_MODELS_TO_RASA_TARGET_MODULES_MAPPING = {
    "llama": LLAMA_LIKE_TARGETS,
    "mistral": LLAMA_LIKE_TARGETS,
    "qwen2": LLAMA_LIKE_TARGETS,
    "qwen3": LLAMA_LIKE_TARGETS,
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj"],
}


@dataclass
class RasaConfig(PeftConfig):
    """Configuration of a RaSA adapter (paper Eq. 5-6).

    For every targeted module type (e.g. all layers' ``self_attn.q_proj``) with L adapted layers, RaSA trains one
    shared pool ``B_S`` (out x L*k), ``A_S`` (L*k x in); per layer a private ``B~_i`` (out x (r-k)), ``A~_i``
    ((r-k) x in) and a trainable diagonal ``d_i`` of length r-k+L*k. The layer update is
    ``dW_i = [B~_i B_S] diag(d_i) [A~_i; A_S]`` (effective rank r-k+L*k), with no extra alpha/r factor.

    Args:
        r: per-layer rank budget, as in LoRA (same A/B parameter count as LoRA at this r).
        k: ranks each layer contributes to the shared pool; ``None`` means the paper's ``max(r // 8, 1)``
            (:func:`rasa.method_registry.default_k`).
            ``k = 0``: no pool (a LoRA update with a trainable diagonal); ``k = r``: no private part.
        alpha: scale budget: d starts at ``alpha / (2 (r-k))`` on the private and ``alpha / (2 L k)`` on the shared
            entries (Eq. 6, applied literally as the authors' code does, also when one part is empty: k = 0 then
            starts from LoRA with scale ``alpha / (2 r)``, half of PEFT LoRA's ``alpha / r``).
        dropout: dropout probability on the adapter input.
        target_modules: module names (suffixes) or a regex; only ``nn.Linear`` modules are supported.
        init_weights: ``True`` (paper init: A kaiming-uniform(a=sqrt 5), B zero); ``False`` also draws B at random,
            so that a fresh adapter is not a no-op (used by tests).
    """

    r: int = field(default=8, metadata={"help": "Per-layer rank budget r (private part has rank r - k)."})
    k: Optional[int] = field(
        default=None, metadata={"help": "Ranks per layer moved to the shared pool; default max(r // 8, 1)."}
    )
    alpha: float = field(default=8.0, metadata={"help": "Scale budget used to initialise the diagonal d."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter input."})
    target_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names or regex of the nn.Linear modules to adapt."}
    )
    exclude_modules: Optional[Union[list[str], str]] = field(
        default=None, metadata={"help": "Module names or regex to exclude."}
    )
    init_weights: bool = field(default=True, metadata={"help": "Paper init (True) or random non-zero B (False)."})
    layers_to_transform: Optional[Union[list[int], int]] = field(
        default=None, metadata={"help": "Only adapt these layer indices (L counts only these)."}
    )
    layers_pattern: Optional[Union[list[str], str]] = field(
        default=None,
        metadata={"help": "Name of the nn.ModuleList holding the layers (with layers_to_transform); also used to find "
                          "layer indices when grouping modules into pools."},
    )
    bias: str = field(default="none", metadata={"help": "Only 'none' is supported."})
    modules_to_save: Optional[list[str]] = field(
        default=None, metadata={"help": "Extra modules to train and save (e.g. a classifier head)."}
    )

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = ExtraPeftType.RASA
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, list):
            self.exclude_modules = set(self.exclude_modules)
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r <= 0:
            raise ValueError(f"RasaConfig.r must be a positive integer, got r={self.r!r}.")
        if self.k is None:
            self.k = default_k(self.r)
        if not isinstance(self.k, int) or isinstance(self.k, bool):
            raise ValueError(f"RasaConfig.k must be an integer in [0, r], got k={self.k!r}.")
        if self.k < 0:
            raise ValueError(f"RasaConfig.k must be >= 0 (k = 0 disables the shared pool), got k={self.k}.")
        if self.k > self.r:
            raise ValueError(f"RasaConfig.k must be <= r (k = r shares every rank), got k={self.k} > r={self.r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"RasaConfig.dropout must be in [0, 1), got {self.dropout}.")
        if self.bias != "none":
            raise ValueError(f"RasaConfig.bias: only 'none' is supported, got {self.bias!r}.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("RasaConfig: `layers_pattern` requires `layers_to_transform`.")
