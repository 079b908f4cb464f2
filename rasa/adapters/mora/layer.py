"""MoRA type-6 tuner layer on ``nn.Linear`` (written from the MoRA paper's description and the RaSA notes)."""

from __future__ import annotations

import math
from typing import Any

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from .._merging import DeltaMergeMixin
from .config import mora_rank


def _rotation(n_chunks: int, r_hat: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (n_chunks x r_hat) of a RoPE rotation by chunk position, half-split pairing."""
    inv_freq = 10000.0 ** (-torch.arange(0, r_hat, 2, dtype=torch.float64) / r_hat)  # r_hat/2
    angles = torch.arange(n_chunks, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(device=device, dtype=dtype), angles.sin().to(device=device, dtype=dtype)


class MoraLayer(DeltaMergeMixin, BaseTunerLayer):
    adapter_layer_names = ("mora_M",)
    other_param_names = ("r", "r_hat", "mora_dropout")

    def __init__(self, base_layer: nn.Module, **kwargs) -> None:
        self.base_layer = base_layer
        self.mora_M = nn.ParameterDict({})
        self.mora_dropout = nn.ModuleDict({})
        self.r: dict[str, int] = {}
        self.r_hat: dict[str, int] = {}
        self._disable_adapters = False
        self.merged_adapters = []
        base = self.get_base_layer()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"MoRA supports only torch.nn.Linear targets, got {type(base).__name__}.")
        self.in_features, self.out_features = base.in_features, base.out_features
        self._tables: dict = {}
        self.kwargs = kwargs

    def update_layer(self, adapter_name: str, r: int, dropout: float, init_weights: bool = True) -> None:
        r_hat = mora_rank(self.in_features, self.out_features, r)
        if r_hat < 2:
            raise ValueError(f"MoRA: r={r} gives a square matrix of side {r_hat} < 2 for this layer.")
        self.r[adapter_name], self.r_hat[adapter_name] = r, r_hat
        self.mora_dropout[adapter_name] = nn.Dropout(p=dropout) if dropout > 0.0 else nn.Identity()
        weight = self.get_base_layer().weight
        dtype = weight.dtype if weight.dtype.is_floating_point else torch.float32
        M = torch.zeros(r_hat, r_hat, device=weight.device, dtype=dtype)
        if not init_weights:
            nn.init.kaiming_uniform_(M, a=math.sqrt(5))
        self.mora_M[adapter_name] = nn.Parameter(M)
        self.set_adapter(self.active_adapters)

    def _apply_mora(self, h: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        """The contribution of square matrix M for input h (..., in_features) -> (..., out_features)."""
        r_hat = M.shape[0]
        n = -(-self.in_features // r_hat)  # chunks, ceil
        if n * r_hat != self.in_features:  # fill the last chunk by wrapping around to the start of x
            idx = torch.arange(n * r_hat, device=h.device) % self.in_features
            h = h.index_select(-1, idx)
        lead = h.shape[:-1]
        h = h.reshape(*lead, n, r_hat)
        key = (n, r_hat, h.device, h.dtype)
        if key not in self._tables:
            self._tables[key] = _rotation(n, r_hat, h.device, h.dtype)
        cos, sin = self._tables[key]
        half = r_hat // 2
        h = h * cos + torch.cat([-h[..., half:], h[..., :half]], dim=-1) * sin
        z = (h @ M.transpose(0, 1)).reshape(*lead, n * r_hat)
        if n * r_hat >= self.out_features:
            return z[..., : self.out_features]
        idx = torch.arange(self.out_features, device=z.device) % (n * r_hat)  # repeat when too short
        return z.index_select(-1, idx)

    def get_delta_weight(self, adapter: str) -> torch.Tensor:
        """dW (out x in) with dW x = MoRA(x): the map is linear in x, so dW = MoRA(I)^T (exact)."""
        weight = self.get_base_layer().weight
        M = self.mora_M[adapter]
        work = torch.float32 if M.dtype in (torch.float16, torch.bfloat16) else M.dtype
        eye = torch.eye(self.in_features, device=M.device, dtype=work)
        delta = self._apply_mora(eye, M.to(work)).transpose(0, 1)
        return delta.to(weight.dtype)

    def has_adapter(self, name: str) -> bool:
        return name in self.mora_M


class Linear(nn.Module, MoraLayer):
    def __init__(self, base_layer: nn.Module, adapter_name: str, r: int, dropout: float, init_weights: bool = True,
                 **kwargs) -> None:
        super().__init__()
        MoraLayer.__init__(self, base_layer, **kwargs)
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r, dropout, init_weights=init_weights)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if kwargs.pop("adapter_names", None) is not None:
            raise ValueError("MoRA does not support mixed-adapter batches (`adapter_names`).")
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return self.base_layer(x, *args, **kwargs)
        if self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        result_dtype = result.dtype
        for name in self.active_adapters:
            if name not in self.mora_M:
                continue
            h = self.mora_dropout[name](self._cast_input_dtype(x, self.mora_M[name].dtype))
            result = result + self._apply_mora(h, self.mora_M[name])
        return result.to(result_dtype)

    def __repr__(self) -> str:
        return "mora." + super().__repr__()
