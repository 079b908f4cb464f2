"""The method registry: every fine-tuning method, and every fact the code needs about it, in one place.

An entry (:class:`Method`) says how to build the method's PEFT config (:mod:`rasa.method_builders`), how to count
its extra state and which training callbacks it needs, how the paper spells it (tables, legends, the ``method``
column of ``paper_numbers.csv``), its colour map in figures, and how the study grid and run ids treat it (rank or
not, RaSA's shared ranks k). The order of the registry is the paper's row order of Tables 1-2. The config's method
names (``methods:``, ``study.*.methods``) are checked against it by :func:`rasa.study.check_config`.

Adding a method: write its config builder (a function ``(model, BuildArgs) -> PeftConfig``) and :func:`register`
a :class:`Method`; nothing else changes. This module imports neither torch nor PEFT, so the workflow can read it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rasa import method_builders as b

NAME = re.compile(r"^[a-z][a-z0-9]*$")  # a config key and a run-id field (see rasa.runs)


def default_k(r: int) -> int:
    """The paper's shared ranks per layer for RaSA at rank r: k = max(r // 8, 1)."""
    return max(r // 8, 1)


@dataclass(frozen=True)
class BuildArgs:
    """What a config builder gets besides the model (targets already split by :func:`rasa.methods.apply_method`)."""

    r: int
    k: int | None
    alpha: float
    dropout: float
    target_modules: list[str]
    target_parameters: list[str]  # fused MoE expert parameters; non-empty only where ``expert_parameters``
    task_type: str | None
    total_steps: int | None


@dataclass(frozen=True)
class Method:
    """One method. ``build`` is ``None`` for a method without an adapter and rank (full fine-tuning)."""

    name: str                     # config key and run-id field
    label: str                    # the paper's spelling (tables, legends, paper_numbers.csv)
    build: Callable | None        # (model, BuildArgs) -> PEFT config
    uses_k: bool = False          # RaSA's shared ranks: k in the grid and the run id
    own_row: bool = False         # the tables give it a row above the rank groups (FFT; VeRA at its own rank)
    colormap: str = "Greys"       # matplotlib colour map of its curves, darker for larger r
    expert_parameters: bool = False  # can adapt fused MoE expert parameters (PEFT ``target_parameters``)
    after_build: Callable | None = None       # (peft_model) -> None
    extra_parameters: Callable | None = None  # (model) -> int: importance state (the paper's "extra" column)
    callbacks: Callable | None = None         # (model) -> list of TrainerCallback
    count_as: str | None = None   # a method with the same shapes to count parameters with on the meta device

    @property
    def has_rank(self) -> bool:
        return self.build is not None

    def k_for(self, r: int, k: int | None = None) -> int:
        """The k of a run at rank r: ``k`` (default :func:`default_k`) where the method shares ranks, else 0."""
        if not self.uses_k:
            return 0
        return default_k(r) if k is None else k


_REGISTRY: dict[str, Method] = {}


def register(method: Method, before: str | None = None) -> Method:
    """Add ``method`` (at the end of the order, or just before ``before``); names are unique."""
    if not NAME.match(method.name):
        raise ValueError(f"method name {method.name!r} must match {NAME.pattern} (it is part of run ids)")
    if method.name in _REGISTRY:
        raise ValueError(f"method {method.name!r} is already registered")
    if before is not None and before not in _REGISTRY:
        raise ValueError(f"register(before={before!r}): no such method; known methods: {', '.join(_REGISTRY)}")
    items = list(_REGISTRY.items())
    at = len(items) if before is None else list(_REGISTRY).index(before)
    items.insert(at, (method.name, method))
    _REGISTRY.clear()
    _REGISTRY.update(items)
    return method


def unregister(name: str) -> None:
    """Remove a method (tests register hypothetical methods and remove them again)."""
    get(name)
    del _REGISTRY[name]


def names() -> tuple[str, ...]:
    """Every registered method, in the paper's row order."""
    return tuple(_REGISTRY)


def get(name: str) -> Method:
    """The entry of ``name``; ``ValueError`` naming the known methods otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"Unknown method {name!r}; known methods: {', '.join(_REGISTRY)}.") from None


def by_label(label: str) -> Method:
    """The entry the paper spells ``label`` (``LoRA`` -> lora)."""
    for method in _REGISTRY.values():
        if method.label == label:
            return method
    raise ValueError(f"no method is spelt {label!r}; known: {', '.join(m.label for m in _REGISTRY.values())}")


class _Labels(Mapping):
    """``name -> the paper's spelling``, read live from the registry (so registered methods appear)."""

    def __getitem__(self, name: str) -> str:
        return _REGISTRY[name].label

    def __iter__(self):
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)


LABELS: Mapping[str, str] = _Labels()


for _method in (
    Method("fft", "FFT", None, own_row=True),
    Method("vera", "VeRA", b.vera, own_row=True),
    Method("lora", "LoRA", b.lora, colormap="Blues", expert_parameters=True),
    Method("mora", "MoRA", b.mora),
    Method("olora", "OLoRA", b.olora, count_as="lora"),  # its QR initialisation cannot run on meta tensors
    Method("adalora", "AdaLoRA", b.adalora, after_build=b.freeze_ranknum, extra_parameters=b.adalora_extra,
           callbacks=b.adalora_callbacks),
    Method("prilora", "PriLoRA", b.prilora, extra_parameters=b.prilora_extra, callbacks=b.prilora_callbacks),
    Method("rasa", "RaSA", b.rasa, uses_k=True, colormap="Reds"),
):
    register(_method)
