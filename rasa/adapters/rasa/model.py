"""RaSA tuner model: groups the targeted modules into module types and owns one shared pool per type.

Which modules share a pool
    Two targeted modules share a pool iff their qualified names are identical except for the index of the layer list
    they sit in, i.e. the first ``<list>.<N>.`` segment (``model.layers.3.self_attn.q_proj`` and
    ``model.layers.7.self_attn.q_proj`` share; ``...q_proj`` and ``...k_proj`` do not). For Llama / Mistral with the
    paper's seven targets this gives the paper's seven pools (q, k, v, o, gate, up, down), each of rank L*k, L being
    the number of adapted layers of that type (``layers_to_transform`` reduces it). Why: Eq. 3 builds ``B_S`` / ``A_S``
    by concatenating the k shared ranks that each *layer* gives up for one weight matrix; sharing across types would
    mix matrices of different shapes and roles, and the paper's analysis (Fig. 2) is per module type too. Any further
    index after the layer index stays part of the type, so an MoE model whose experts are separate ``nn.Linear``
    modules (``layers.N.block_sparse_moe.experts.E.w1``) gets one pool per expert index E, shared across layers.
    Mixtral under transformers 5 stores experts as fused 3-D parameters, which RaSA does not adapt: targeting them is
    refused with an error (see :mod:`rasa.methods`).

    The layer index is found with ``layers_pattern`` when given, else with the first ``.<name>.<digits>.`` segment of
    the name (PEFT's own rule for ``layers_to_transform``). A targeted module without a layer index is an error when
    k > 0 (with k = 0 there is no pool, and such a module is a type of its own); so is a type whose modules differ in
    shape: a pool needs one shape. A saved pool has L*k rows, so loading it into a model with another number of
    adapted layers is refused with that explanation.

Storage
    ``RasaModel.rasa_shared_A[adapter][type]`` (L*k x in) and ``rasa_shared_B[adapter][type]`` (out x L*k) are
    registered once, on the tuner (``base_model`` of the ``PeftModel``), so they appear once in ``parameters()``, in
    the optimizer and in the saved file (``base_model.rasa_shared_A.<type>``); each layer reads them through an
    unregistered handle (:class:`~rasa.adapters.rasa.layer.SharedPools`).

DeepSpeed ZeRO-3
    A pool parameter is read in every layer's forward but owned by none of them, so ZeRO-3 would never gather it.
    When ZeRO-3 is enabled at injection time (``transformers.integrations.is_deepspeed_zero3_enabled()``) every layer
    registers its pool and its private weights with ``deepspeed.zero.register_external_parameter``; the layer's
    forward also registers and gathers them on first use if the model was wrapped before DeepSpeed was configured.
    Checked with two CPU processes (``tests/adapters/test_zero3.py``): the loss curve equals a plain run's to 1e-6.
    Note that DeepSpeed 0.19 also detects a partitioned parameter read through a module's ``_parameters`` during a
    forward and registers it itself (the same run with our handling switched off also matched); the explicit route
    does not rely on that heuristic, and also covers ``merge``/``get_delta_weight`` outside a forward.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

import torch
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer, _ExcludedModule, _maybe_include_all_linear_layers
from torch import nn

from .._unsupported import UnsupportedFeatures
from .config import TRANSFORMERS_MODELS_TO_RASA_TARGET_MODULES_MAPPING, RasaConfig
from .layer import Linear, RasaLayer, SharedPools


@dataclass(frozen=True)
class _Member:
    group: str
    layer_index: int
    num_layers: int
    out_features: int
    in_features: int


def split_layer_index(name: str, layers_pattern=None) -> Optional[tuple[str, int, str]]:
    """``"model.layers.3.self_attn.q_proj"`` -> ``("model.layers", 3, "self_attn.q_proj")``; None if no index."""
    patterns = [layers_pattern] if isinstance(layers_pattern, str) else list(layers_pattern or [])
    if patterns:
        for pattern in patterns:
            m = re.match(rf"^(?P<pre>(?:.*?\.)?{pattern})\.(?P<idx>\d+)\.(?P<rest>.+)$", name)
            if m:
                return m["pre"], int(m["idx"]), m["rest"]
        return None
    m = re.match(r"^(?P<pre>(?:.*?\.)?[^.]+)\.(?P<idx>\d+)\.(?P<rest>.+)$", name)
    return (m["pre"], int(m["idx"]), m["rest"]) if m else None


def _encode(key: str) -> str:
    return key.replace(".", "__")


class RasaModel(UnsupportedFeatures, BaseTuner):
    """PEFT tuner for RaSA (see the module docstring for pooling, storage and ZeRO-3)."""

    method_name = "RaSA"
    prefix: str = "rasa_"
    tuner_layer_cls = RasaLayer
    target_module_mapping = TRANSFORMERS_MODELS_TO_RASA_TARGET_MODULES_MAPPING
    uses_shared_state: bool = True

    # ----------------------------------------------------------------- planning
    def _ensure_containers(self) -> None:
        if "rasa_shared_A" not in self._modules:
            self.rasa_shared_A = nn.ModuleDict()
            self.rasa_shared_B = nn.ModuleDict()
            self._rasa_pools = SharedPools(self.rasa_shared_A, self.rasa_shared_B)
            self._rasa_plan: dict[str, dict[str, _Member]] = {}

    def _plan(self, model: nn.Module, config: RasaConfig) -> dict[str, _Member]:
        config = self._prepare_adapter_config(config, self.get_model_config(model))
        config = _maybe_include_all_linear_layers(config, model)
        wrapped = [n for n, m in model.named_modules() if isinstance(m, BaseTunerLayer)]
        found: list[tuple[str, str, str, int, tuple[int, int]]] = []
        alone: dict[str, _Member] = {}
        for name, module in model.named_modules():
            if not name or any(name.startswith(w + ".") for w in wrapped):
                continue
            hit = self._check_target_module_exists(config, name)
            if not hit or isinstance(hit, _ExcludedModule):
                continue
            base = module.get_base_layer() if isinstance(module, BaseTunerLayer) else module
            if not isinstance(base, nn.Linear):
                raise TypeError(
                    f"RaSA can only adapt torch.nn.Linear modules; target {name!r} is a {type(base).__name__}. "
                    "Narrow `target_modules`."
                )
            split = split_layer_index(name, config.layers_pattern)
            if split is None and config.k > 0:
                raise ValueError(
                    f"RaSA shares ranks across layers, but target {name!r} has no layer index "
                    "('<layer_list>.<N>.' in its name); exclude it, set `layers_pattern`, or use k = 0."
                )
            if split is None:  # k = 0: no pool to share, the module is a group of its own
                alone[name] = _Member(_encode(name), 0, 1, base.out_features, base.in_features)
                continue
            pre, idx, rest = split
            found.append((name, pre, rest, idx, (base.out_features, base.in_features)))
        if not found:
            return alone
        prefixes = {pre for _, pre, *_ in found}
        groups: dict[str, list] = {}
        for name, pre, rest, idx, shape in found:
            key = _encode(rest if len(prefixes) == 1 else f"{pre}.{rest}")
            groups.setdefault(key, []).append((name, idx, shape))
        plan = {}
        for key, members in groups.items():
            shapes = {shape for _, _, shape in members}
            if len(shapes) > 1:
                detail = ", ".join(f"{n}: {s[0]}x{s[1]}" for n, _, s in members[:6])
                raise ValueError(
                    f"RaSA shares one pool per module type, but the modules of type {key!r} differ in shape "
                    f"(out x in: {detail}). Exclude the odd ones from `target_modules`."
                )
            (out_f, in_f), L = shapes.pop(), len(members)
            for name, idx, _ in members:
                plan[name] = _Member(key, idx, L, out_f, in_f)
        return {**plan, **alone}

    def _create_pools(self, adapter_name: str, config: RasaConfig, plan: dict[str, _Member], model, meta: bool):
        A_dict, B_dict = nn.ParameterDict(), nn.ParameterDict()
        if config.k > 0:
            first_member: dict[str, str] = {}
            for name, mem in plan.items():
                first_member.setdefault(mem.group, name)
            for group, name in first_member.items():
                mem = plan[name]
                weight = model.get_submodule(name)
                weight = (weight.get_base_layer() if isinstance(weight, BaseTunerLayer) else weight).weight
                dtype = weight.dtype if weight.dtype.is_floating_point else torch.float32
                device = torch.device("meta") if meta else weight.device
                rs = mem.num_layers * config.k
                A = torch.empty(rs, mem.in_features, device=device, dtype=dtype)
                B = torch.empty(mem.out_features, rs, device=device, dtype=dtype)
                if not meta:
                    nn.init.kaiming_uniform_(A, a=math.sqrt(5))
                    if config.init_weights:
                        nn.init.zeros_(B)
                    else:
                        nn.init.kaiming_uniform_(B, a=math.sqrt(5))
                A_dict[group] = nn.Parameter(A)
                B_dict[group] = nn.Parameter(B)
        self.rasa_shared_A[adapter_name] = A_dict
        self.rasa_shared_B[adapter_name] = B_dict

    def _drop_pools(self, adapter_name: str) -> None:
        for container in (self.rasa_shared_A, self.rasa_shared_B):
            if adapter_name in container:
                del container[adapter_name]
        self._rasa_plan.pop(adapter_name, None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Refuse, with the reason, a pool whose size says it was trained on another layer count."""
        for adapter, pools in self.rasa_shared_A.items():
            k = self.peft_config[adapter].k
            for group, pool in pools.items():
                saved = state_dict.get(f"{prefix}rasa_shared_A.{adapter}.{group}")
                if saved is not None and saved.shape[0] != pool.shape[0]:
                    raise ValueError(
                        f"RaSA adapter {adapter!r}: the saved shared pool of {group!r} has "
                        f"{saved.shape[0]} ranks, i.e. L*k with k={k} and L={saved.shape[0] // k} "
                        f"adapted layers, but this model has L={pool.shape[0] // k} such layers. A "
                        "RaSA pool is sized by the number of adapted layers: load the adapter into "
                        "a model with the layer count (and layers_to_transform) it was trained with."
                    )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ---------------------------------------------------------------- injection
    def inject_adapter(
        self, model: nn.Module, adapter_name: str, autocast_adapter_dtype: bool = True,
        low_cpu_mem_usage: bool = False, state_dict: Optional[dict[str, torch.Tensor]] = None,
    ) -> None:
        self._ensure_containers()
        config = self.peft_config[adapter_name]
        plan = self._plan(model, config)
        self._rasa_plan[adapter_name] = plan
        self._create_pools(adapter_name, config, plan, model, meta=low_cpu_mem_usage)
        try:
            super().inject_adapter(
                model, adapter_name, autocast_adapter_dtype=autocast_adapter_dtype,
                low_cpu_mem_usage=low_cpu_mem_usage, state_dict=state_dict,
            )
        except Exception:
            self._drop_pools(adapter_name)
            raise
        self._sync_pool_requires_grad(inference_mode=config.inference_mode)
        self.register_zero3_external_parameters(only_if_enabled=True)

    def _create_and_replace(
        self, rasa_config: RasaConfig, adapter_name: str, target: nn.Module, target_name: str, parent: nn.Module,
        current_key: str, parameter_name: Optional[str] = None, **optional_kwargs,
    ) -> None:
        if parameter_name is not None:
            raise ValueError("RaSA does not support `target_parameters` (fused MoE experts).")
        member = self._rasa_plan[adapter_name].get(current_key)
        if member is None:
            raise RuntimeError(f"RaSA: module {current_key!r} was targeted but not planned; this is a bug.")
        kwargs = {
            "r": rasa_config.r, "k": rasa_config.k, "alpha": rasa_config.alpha, "dropout": rasa_config.dropout,
            "num_layers": member.num_layers, "group": member.group, "init_weights": rasa_config.init_weights,
        }
        if isinstance(target, RasaLayer):
            target.update_layer(adapter_name, **kwargs)
            return
        if isinstance(target, BaseTunerLayer):
            raise TypeError(f"{current_key!r} already carries a different PEFT method ({type(target).__name__}).")
        new_module = Linear(target, adapter_name, self._rasa_pools, **kwargs)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)
        self._replace_module(parent, target_name, new_module, target)

    # ---------------------------------------------- keep the pools in step with layers
    def _pool_params(self, adapter_name: Optional[str] = None):
        for container in (self.rasa_shared_A, self.rasa_shared_B):
            for name, pdict in container.items():
                if adapter_name is None or name == adapter_name:
                    yield name, pdict

    def _sync_pool_requires_grad(self, inference_mode: bool = False) -> None:
        active = set(self.active_adapters)
        for name, pdict in self._pool_params():
            for p in pdict.values():
                p.requires_grad_(name in active and not inference_mode)

    def set_adapter(self, adapter_name, inference_mode: bool = False) -> None:
        super().set_adapter(adapter_name, inference_mode=inference_mode)
        self._sync_pool_requires_grad(inference_mode=inference_mode)

    def _enable_adapter_layers(self, enabled: bool = True) -> None:
        super()._enable_adapter_layers(enabled)
        if enabled:
            self._sync_pool_requires_grad()
        else:
            for _, pdict in self._pool_params():
                for p in pdict.values():
                    p.requires_grad_(False)

    def set_requires_grad(self, adapter_names, requires_grad: bool = True) -> None:
        super().set_requires_grad(adapter_names, requires_grad=requires_grad)
        names = {adapter_names} if isinstance(adapter_names, str) else set(adapter_names)
        for name, pdict in self._pool_params():
            if name in names:
                for p in pdict.values():
                    p.requires_grad_(requires_grad)

    def delete_adapter(self, adapter_name: str) -> None:
        super().delete_adapter(adapter_name)
        self._drop_pools(adapter_name)
        self._sync_pool_requires_grad()
        if any(hasattr(m, "_external_params") for m in self.model.modules() if isinstance(m, RasaLayer)):
            self.register_zero3_external_parameters()

    def _cast_adapter_dtype(self, adapter_name: str, autocast_adapter_dtype: bool = True) -> None:
        super()._cast_adapter_dtype(adapter_name, autocast_adapter_dtype=autocast_adapter_dtype)
        if not autocast_adapter_dtype:
            return
        for _, pdict in self._pool_params(adapter_name):
            for key in list(pdict.keys()):
                p = pdict[key]
                if p.dtype in (torch.float16, torch.bfloat16):
                    pdict[key] = nn.Parameter(p.data.to(torch.float32), requires_grad=p.requires_grad)
        # the cast created new parameter objects: re-point any ZeRO-3 registration made at injection
        if any(hasattr(m, "_external_params") for m in self.model.modules() if isinstance(m, RasaLayer)):
            self.register_zero3_external_parameters()

    def register_zero3_external_parameters(self, only_if_enabled: bool = False) -> int:
        """Declare each layer's pool and private weights to DeepSpeed ZeRO-3 (see module docstring).

        Returns the number of (layer, parameter) registrations. With ``only_if_enabled`` it does nothing unless
        transformers reports ZeRO-3 as enabled; call it without that flag after configuring DeepSpeed yourself.
        """
        if only_if_enabled:
            try:
                from transformers.integrations import is_deepspeed_zero3_enabled
            except ImportError:  # pragma: no cover
                return 0
            if not is_deepspeed_zero3_enabled():
                return 0
        from deepspeed.runtime.zero.partition_parameters import register_external_parameter

        count = 0
        for module in self.model.modules():
            if not isinstance(module, RasaLayer):
                continue
            params = []
            for name in module.rasa_d:
                params.append(module.rasa_d[name])
                if name in module.rasa_A:
                    params += [module.rasa_A[name], module.rasa_B[name]]
                pool = module._pools.get(name, module.rasa_group[name])
                if pool is not None:
                    params += list(pool)
            current = {id(p) for p in params}
            stale = [key for key in getattr(module, "_external_params", {}) if key not in current]
            for key in stale:  # parameters replaced since (dtype cast, deleted adapter)
                del module._external_params[key]
            for p in params:
                register_external_parameter(module, p)
                count += 1
        return count

    def rasa_summary(self, adapter_name: str = "default") -> dict[str, dict]:
        """Per pool type: number of layers L, shapes and effective rank r - k + L*k (for logs and tests)."""
        cfg = self.peft_config[adapter_name]
        out: dict[str, dict] = {}
        for name, mem in self._rasa_plan.get(adapter_name, {}).items():
            entry = out.setdefault(
                mem.group,
                {"num_layers": mem.num_layers, "shape": (mem.out_features, mem.in_features),
                 "effective_rank": cfg.r - cfg.k + mem.num_layers * cfg.k, "modules": []},
            )
            entry["modules"].append(name)
        return out
