"""Configuration of MoRA, the square-matrix baseline of the RaSA paper (MoRA type 6)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Union

from peft.config import PeftConfig

from .._registry import ExtraPeftType


def mora_rank(in_features: int, out_features: int, r: int) -> int:
    """Side of MoRA's square matrix for a LoRA-equivalent rank r: floor(sqrt((in + out) * r) + 0.5), made even.

    r_hat**2 ~= r * (in + out), i.e. the same number of trainable parameters as LoRA at rank r; type 6 rotates pairs
    of coordinates, so r_hat is rounded down to an even number.
    """
    r_hat = int(math.floor(math.sqrt((in_features + out_features) * r) + 0.5))
    return r_hat - (r_hat % 2)


@dataclass
class MoraConfig(PeftConfig):
    """MoRA type 6: ``dW x = decompress(M @ rot(compress(x)))`` with one zero-initialised r_hat x r_hat matrix M.

    compress: the input is cut into chunks of r_hat features (the last chunk is filled up by wrapping around to the
    start of x) and chunk i is rotated RoPE-style with angles ``i * 10000**(-2j/r_hat)``; M is applied to every chunk;
    decompress: the chunk outputs are concatenated and cut to ``out_features`` (repeated first if too short).
    The scale is 1 (alpha is not used, as in the RaSA authors' runs); dropout acts on the input.

    Args:
        r: LoRA-equivalent rank; each module gets ``r_hat = mora_rank(in, out, r)``.
        dropout: dropout probability on the adapter input.
        target_modules: ``nn.Linear`` module names or a regex.
    """

    r: int = field(default=8, metadata={"help": "LoRA-equivalent rank; r_hat = even(floor(sqrt((in+out) r) + .5))."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout on the adapter input."})
    target_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules to adapt."})
    exclude_modules: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Modules to skip."})
    init_weights: bool = field(default=True, metadata={"help": "Zero M (True) or random M (False, tests)."})
    layers_to_transform: Optional[Union[list[int], int]] = field(default=None, metadata={"help": "Layer indices."})
    layers_pattern: Optional[Union[list[str], str]] = field(default=None, metadata={"help": "Layer list name."})
    bias: str = field(default="none", metadata={"help": "Only 'none' is supported."})
    modules_to_save: Optional[list[str]] = field(default=None, metadata={"help": "Extra modules to train/save."})

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = ExtraPeftType.MORA
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)
        if isinstance(self.exclude_modules, list):
            self.exclude_modules = set(self.exclude_modules)
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r <= 0:
            raise ValueError(f"MoraConfig.r must be a positive integer, got r={self.r!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MoraConfig.dropout must be in [0, 1), got {self.dropout}.")
        if self.bias != "none":
            raise ValueError(f"MoraConfig.bias: only 'none' is supported, got {self.bias!r}.")
        if self.layers_pattern and self.layers_to_transform is None:
            raise ValueError("MoraConfig: `layers_pattern` requires `layers_to_transform`.")
