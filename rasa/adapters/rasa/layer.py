"""RaSA tuner layer: wraps one ``nn.Linear`` and adds ``[B~_i B_S] diag(d_i) [A~_i; A_S] x`` (paper Eq. 5).

The private factors ``A~_i``, ``B~_i`` and the diagonal ``d_i`` live on the layer. The shared pool ``A_S``, ``B_S``
lives once on the tuner model (:class:`rasa.adapters.rasa.model.RasaModel`); the layer only keeps an *unregistered*
reference (:class:`SharedPools`) to the tuner's two ``ModuleDict`` containers and looks its pool up by group key at
every use, so the pool is neither duplicated in this layer's ``state_dict`` nor stale after PEFT re-creates the
parameter objects (e.g. when it upcasts adapter weights to fp32).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from .._merging import DeltaMergeMixin


class SharedPools:
    """Plain (non-``nn.Module``) handle on the tuner's pool containers.

    ``A[adapter][group]`` is ``A_S`` (L*k x in) and ``B[adapter][group]`` is ``B_S`` (out x L*k). Holding the
    containers, not the tensors, in a non-Module object keeps the pool out of every layer's ``state_dict``,
    ``parameters()`` and optimizer groups: it is registered exactly once, on the tuner.
    """

    __slots__ = ("A", "B")

    def __init__(self, A: nn.ModuleDict, B: nn.ModuleDict):
        self.A = A
        self.B = B

    def get(self, adapter: str, group: str) -> Optional[tuple[nn.Parameter, nn.Parameter]]:
        if adapter not in self.A or group not in self.A[adapter]:
            return None
        return self.A[adapter][group], self.B[adapter][group]


def _zero3_fetch(module: nn.Module, params) -> None:
    """Make ZeRO-3-partitioned ``params`` usable inside ``module``'s forward.

    Under DeepSpeed ZeRO-3 a parameter is only gathered when the module that *owns* it runs. The RaSA pool is owned
    by the tuner (which never runs a forward) and the private weights by ``ParameterDict`` children (likewise), so
    each layer declares them with ``deepspeed.zero.register_external_parameter``: DeepSpeed then gathers them before
    and releases them after this layer's forward and backward. :class:`RasaModel` registers them eagerly when ZeRO-3 is
    enabled at injection time; this function is the safety net for a model wrapped before DeepSpeed was configured:
    it registers on first use and gathers for this one call, which is what DeepSpeed itself does for a "dangling"
    parameter. Outside ZeRO-3 (no ``ds_id`` attribute) it does nothing.
    """
    for p in params:
        if not hasattr(p, "ds_id"):
            continue
        ext = getattr(module, "_external_params", None)
        if ext is None or id(p) not in ext:
            from deepspeed.runtime.zero.partition_parameters import register_external_parameter

            register_external_parameter(module, p)
        from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

        if p.ds_status == ZeroParamStatus.NOT_AVAILABLE:
            p.all_gather()


class _SplitRasaDelta(torch.autograd.Function):
    """``dy = B~ (d_p * (A~ x)) + B_S (d_s * (A_S x))`` with a hand-written backward.

    Plain autograd over the two low-rank paths reads the (tokens x out) output gradient four times and the input
    twice and accumulates two full-size partial results per direction; here each weight gradient pair comes from one
    product over the concatenated *activations* (tokens x (r-k+L*k), tiny), the two output-side products accumulate
    in place (``addmm_``), and nothing concatenates weight matrices. Measured on the CPU this cuts RaSA's overhead
    over one rank-(r-k+L*k) LoRA by about half (benchmarks/adapters.py). Used outside autocast only (the backward
    would otherwise see autocast dtypes); the layer falls back to plain autograd under autocast.
    """

    @staticmethod
    def forward(ctx, x, A, B, dp, A_S, B_S, ds):
        x2 = x.reshape(-1, x.shape[-1])
        hp = x2 @ A.t()
        hs = x2 @ A_S.t()
        z = (hp * dp) @ B.t()
        z.addmm_(hs * ds, B_S.t())
        ctx.save_for_backward(x2, A, B, dp, A_S, B_S, ds, hp, hs)
        ctx.x_shape = x.shape
        return z.view(*x.shape[:-1], z.shape[-1])

    @staticmethod
    def backward(ctx, g):
        x2, A, B, dp, A_S, B_S, ds, hp, hs = ctx.saved_tensors
        need = ctx.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])
        rp = hp.shape[1]
        gx = gA = gB = gdp = gA_S = gB_S = gds = None
        if need[2] or need[5]:
            gBcat = g2.t() @ torch.cat([hp * dp, hs * ds], dim=1)
            gB, gB_S = gBcat[:, :rp], gBcat[:, rp:]
        gup = g2 @ B
        gus = g2 @ B_S
        if need[3]:
            gdp = (gup * hp).sum(0)
        if need[6]:
            gds = (gus * hs).sum(0)
        ghp, ghs = gup * dp, gus * ds
        if need[1] or need[4]:
            gAcat = torch.cat([ghp, ghs], dim=1).t() @ x2
            gA, gA_S = gAcat[:rp], gAcat[rp:]
        if need[0]:
            gx = ghp @ A
            gx.addmm_(ghs, A_S)
            gx = gx.view(ctx.x_shape)
        return gx, gA, gB, gdp, gA_S, gB_S, gds


class RasaLayer(DeltaMergeMixin, BaseTunerLayer):
    """Adapter state of RaSA on one base layer (any number of adapters, keyed by adapter name)."""

    adapter_layer_names = ("rasa_A", "rasa_B", "rasa_d")
    other_param_names = ("r", "k", "alpha", "num_layers", "rasa_group", "rasa_dropout")

    def __init__(self, base_layer: nn.Module, pools: SharedPools, **kwargs) -> None:
        self.base_layer = base_layer
        self.rasa_A = nn.ParameterDict({})  # private A~_i: (r-k) x in
        self.rasa_B = nn.ParameterDict({})  # private B~_i: out x (r-k)
        self.rasa_d = nn.ParameterDict({})  # diagonal d_i: (r-k) + L*k
        self.rasa_dropout = nn.ModuleDict({})
        self.r: dict[str, int] = {}
        self.k: dict[str, int] = {}
        self.alpha: dict[str, float] = {}
        self.num_layers: dict[str, int] = {}
        self.rasa_group: dict[str, str] = {}
        self._disable_adapters = False
        self.merged_adapters = []
        self._pools = pools  # not an nn.Module: not registered (see SharedPools)
        base = self.get_base_layer()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"RaSA supports only torch.nn.Linear targets, got {type(base).__name__}.")
        self.in_features = base.in_features
        self.out_features = base.out_features
        self.kwargs = kwargs

    def update_layer(
        self, adapter_name: str, r: int, k: int, alpha: float, dropout: float, num_layers: int, group: str,
        init_weights: bool = True,
    ) -> None:
        if r <= 0 or not 0 <= k <= r:
            raise ValueError(f"RaSA needs r > 0 and 0 <= k <= r, got r={r}, k={k}.")
        self.r[adapter_name] = r
        self.k[adapter_name] = k
        self.alpha[adapter_name] = alpha
        self.num_layers[adapter_name] = num_layers
        self.rasa_group[adapter_name] = group
        self.rasa_dropout[adapter_name] = nn.Dropout(p=dropout) if dropout > 0.0 else nn.Identity()
        rp, rs = r - k, num_layers * k
        weight = self.get_base_layer().weight
        factory = {"device": weight.device, "dtype": weight.dtype if weight.dtype.is_floating_point else None}
        if rp > 0:
            A = torch.empty(rp, self.in_features, **factory)
            B = torch.empty(self.out_features, rp, **factory)
            nn.init.kaiming_uniform_(A, a=math.sqrt(5))
            if init_weights:
                nn.init.zeros_(B)
            else:
                nn.init.kaiming_uniform_(B, a=math.sqrt(5))
            self.rasa_A[adapter_name] = nn.Parameter(A)
            self.rasa_B[adapter_name] = nn.Parameter(B)
        d = torch.empty(rp + rs, **factory)
        if rp > 0:
            d[:rp] = alpha / (2 * rp)
        if rs > 0:
            d[rp:] = alpha / (2 * rs)
        self.rasa_d[adapter_name] = nn.Parameter(d)
        self.set_adapter(self.active_adapters)

    # ------------------------------------------------------------------ helpers
    def _parts(self, adapter: str):
        """(A~, B~, d_private, A_S, B_S, d_shared); private or shared entries are None when that part is empty."""
        d = self.rasa_d[adapter]
        rp = self.r[adapter] - self.k[adapter]
        A = self.rasa_A[adapter] if rp > 0 else None
        B = self.rasa_B[adapter] if rp > 0 else None
        pool = self._pools.get(adapter, self.rasa_group[adapter]) if self.k[adapter] > 0 else None
        if self.k[adapter] > 0 and pool is None:
            raise RuntimeError(
                f"RaSA adapter {adapter!r}: shared pool {self.rasa_group[adapter]!r} is missing from the tuner model."
            )
        A_S, B_S = pool if pool is not None else (None, None)
        _zero3_fetch(self, [t for t in (A, B, d, A_S, B_S) if t is not None])
        return A, B, d[:rp], A_S, B_S, d[rp:]

    def get_delta_weight(self, adapter: str) -> torch.Tensor:
        """dW_i = B~ diag(d_p) A~ + B_S diag(d_s) A_S (out x in), in the base weight's dtype."""
        A, B, dp, A_S, B_S, ds = self._parts(adapter)
        base_w = self.get_base_layer().weight
        # half precision is computed in fp32 (CPU bf16/fp16 matmuls are slow and lossy) and cast back once
        work = self.rasa_d[adapter].dtype
        work = torch.float32 if work in (torch.float16, torch.bfloat16) else work
        delta = torch.zeros(self.out_features, self.in_features, dtype=work, device=base_w.device)
        if A is not None:
            delta += B.to(work) @ (dp.to(work)[:, None] * A.to(work))
        if A_S is not None:
            delta += B_S.to(work) @ (ds.to(work)[:, None] * A_S.to(work))
        return delta.to(base_w.dtype)

    def has_adapter(self, name: str) -> bool:
        return name in self.rasa_d


class Linear(nn.Module, RasaLayer):
    """RaSA on ``nn.Linear``: ``y = W x + B~ (d_p * (A~ x')) + B_S (d_s * (A_S x'))``, ``x' = dropout(x)``.

    The private and the shared path are two separate low-rank products: no weight matrix is concatenated per call
    (see :class:`_SplitRasaDelta` for how the backward keeps the extra passes over activations small).
    """

    def __init__(
        self, base_layer: nn.Module, adapter_name: str, pools: SharedPools, r: int, k: int, alpha: float,
        dropout: float, num_layers: int, group: str, init_weights: bool = True, **kwargs,
    ) -> None:
        super().__init__()
        RasaLayer.__init__(self, base_layer, pools, **kwargs)
        self._active_adapter = adapter_name
        self.update_layer(adapter_name, r, k, alpha, dropout, num_layers, group, init_weights=init_weights)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        if kwargs.pop("adapter_names", None) is not None:
            raise ValueError("RaSA does not support mixed-adapter batches (`adapter_names`).")
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return self.base_layer(x, *args, **kwargs)
        if self.merged:
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        result_dtype = result.dtype
        for name in self.active_adapters:
            if name not in self.rasa_d:
                continue
            A, B, dp, A_S, B_S, ds = self._parts(name)
            h = self.rasa_dropout[name](self._cast_input_dtype(x, self.rasa_d[name].dtype))
            if A is not None and A_S is not None and not torch.is_autocast_enabled(h.device.type):
                result = result + _SplitRasaDelta.apply(h, A, B, dp, A_S, B_S, ds)
                continue
            if A is not None:
                result = result + F.linear(F.linear(h, A) * dp, B)
            if A_S is not None:
                result = result + F.linear(F.linear(h, A_S) * ds, B_S)
        return result.to(result_dtype)

    def __repr__(self) -> str:
        return "rasa." + super().__repr__()
